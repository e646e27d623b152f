//! A start URL and the `Location` its custom domain redirects to: whatever comes back is an
//! https URL (or http on loopback), without query or fragment, and stable when resolved again.

use rolecall_daemon::sources::identity_center::start_url::{is_canonical, parse_redirect};

pub fn run(data: &[u8]) {
    let (start, location) = crate::two_parts(data);
    let (Ok(start), Ok(location)) = (std::str::from_utf8(start), std::str::from_utf8(location))
    else {
        return;
    };
    let _ = is_canonical(start);
    let _ = is_canonical(location);
    let Ok(resolved) = parse_redirect(start, location) else {
        return;
    };
    let u = url::Url::parse(&resolved)
        .unwrap_or_else(|e| panic!("the resolved start URL {resolved:?} is not a URL: {e}"));
    match u.scheme() {
        "https" => {}
        "http" => {
            let loopback = match u.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                Some(url::Host::Domain(d)) => d == "localhost",
                None => false,
            };
            assert!(loopback, "plain http off loopback: {resolved:?}");
        }
        other => panic!("scheme {other} in the resolved start URL {resolved:?}"),
    }
    assert!(u.query().is_none(), "a query survived: {resolved:?}");
    assert!(u.fragment().is_none(), "a fragment survived: {resolved:?}");
    // The resolved URL names itself: redirecting to it changes nothing more.
    let again = parse_redirect(&resolved, &resolved)
        .unwrap_or_else(|e| panic!("the resolved start URL {resolved:?} is refused: {e}"));
    assert_eq!(again, resolved, "resolving is not stable");
}
