//! Rendered replies, kept per profile and reused: the container endpoint and IMDS answer most
//! requests with bytes rendered earlier instead of asking the broker and serialising JSON each
//! time.
//!
//! A rendered reply is reused only within the epoch second it was rendered in and while the
//! provider's generation (see [`super::CredentialProvider::generation`]) is unchanged: a fetch,
//! a refresh, a logout or a reload changes the generation and the next request renders anew.
//! Within one second the output is byte for byte what rendering it again would give (the only
//! time-dependent fields, IMDS's `LastUpdated` and the audit record's `time`, have a
//! resolution of one second), and the broker is still asked once a second per profile, which
//! keeps its refresh-ahead and "recently used" view exact.
//!
//! Readers take no lock: the map is swapped whole (arc-swap) when a reply is added, which
//! happens at most once a second per profile.

use super::CredentialProvider;
use crate::audit::{TcpCaller, Template};
use crate::credentials::RoleCredentials;
use arc_swap::ArcSwap;
use bytes::Bytes;
use rolecall_proto::audit::Interface;
use rolecall_proto::timefmt;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// One profile's rendered reply.
pub(crate) struct Rendered {
    /// The epoch second it was rendered in.
    second: i64,
    generation: u64,
    pub expiration: i64,
    /// The reply body (holds the secret key and token).
    pub body: Bytes,
    /// The audit record of a hand-out of it, but for the caller and the token.
    pub audit: Arc<Template>,
}

impl Rendered {
    /// `c` rendered for `profile`, with the audit record of its hand-out (but for the caller
    /// and the token, which each request fills in). Generation 0: [`Replies`] sets its own.
    pub fn new(
        provider: &dyn CredentialProvider,
        profile: &str,
        interface: Interface,
        now: i64,
        c: &RoleCredentials,
        body: Vec<u8>,
    ) -> Self {
        let mut handout = crate::audit::handout(
            interface,
            profile,
            c,
            rolecall_proto::audit::Caller::default(),
            None,
        );
        handout.time = timefmt::rfc3339(now);
        handout.role = provider.profile(profile).map(|p| p.role);
        Rendered {
            second: now,
            generation: 0,
            expiration: c.expiration,
            body: Bytes::from(body),
            audit: Arc::new(Template::of(&handout)),
        }
    }

    /// Records the hand-out (with this request's caller and token) and answers the body.
    pub fn hand_out(
        &self,
        provider: &dyn CredentialProvider,
        peer: &crate::httpd::TcpPeer,
        token: Option<Arc<rolecall_proto::audit::TokenRef>>,
    ) -> crate::httpd::Reply {
        provider.audit(&self.audit, TcpCaller::from(peer), token);
        super::handler::json_reply(http::StatusCode::OK, self.body.clone())
    }
}

/// Rendered replies by profile, for one route.
#[derive(Default)]
pub(crate) struct Replies {
    /// Keyed by configured profile names only (a request's name is only looked up): no
    /// SipHash needed.
    map: ArcSwap<FxHashMap<String, Arc<Rendered>>>,
}

impl Replies {
    /// `profile`'s reply at `now`: reused when rendered in this second under this generation,
    /// else rendered by `render` from the provider's credentials (errors are not kept).
    pub async fn get(
        &self,
        provider: &dyn CredentialProvider,
        profile: &str,
        interface: Interface,
        now: i64,
        render: impl FnOnce(&RoleCredentials) -> Vec<u8>,
    ) -> Result<Arc<Rendered>, rolecall_proto::api::ErrorBody> {
        // Read before the fetch: a change during it makes the next request render again.
        let generation = provider.generation();
        if let Some(g) = generation {
            if let Some(r) = self.map.load().get(profile) {
                if r.second == now && r.generation == g {
                    return Ok(Arc::clone(r));
                }
            }
        }
        let c = provider.credentials(profile).await?;
        let rendered = Arc::new(Rendered {
            generation: generation.unwrap_or_default(),
            ..Rendered::new(provider, profile, interface, now, &c, render(&c))
        });
        if let Some(g) = generation {
            // Entries of earlier seconds go on the way: the map holds the profiles asked for in
            // the current second at most.
            self.map.rcu(|map| {
                let mut next: FxHashMap<String, Arc<Rendered>> = map
                    .iter()
                    .filter(|(_, r)| r.second == now && r.generation == g)
                    .map(|(k, r)| (k.clone(), Arc::clone(r)))
                    .collect();
                next.insert(profile.to_string(), Arc::clone(&rendered));
                next
            });
        }
        Ok(rendered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::container::ProfileInfo;
    use rolecall_proto::api::ErrorBody;
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counting {
        fetches: AtomicUsize,
        generation: AtomicU64,
    }

    #[async_trait::async_trait]
    impl CredentialProvider for Counting {
        async fn credentials(&self, _: &str) -> Result<RoleCredentials, ErrorBody> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst);
            Ok(RoleCredentials {
                access_key_id: format!("ASIA{n}"),
                secret_access_key: "s".to_string().into(),
                session_token: "t".to_string().into(),
                expiration: 5_000,
                account_id: "111111111111".into(),
                role_arn: String::new(),
            })
        }
        fn profile(&self, _: &str) -> Option<ProfileInfo> {
            Some(ProfileInfo {
                region: None,
                role: "Dev".into(),
                source: "corp".into(),
            })
        }
        fn generation(&self) -> Option<u64> {
            Some(self.generation.load(Ordering::SeqCst))
        }
    }

    fn body(c: &RoleCredentials) -> Vec<u8> {
        c.access_key_id.as_bytes().to_vec()
    }

    #[tokio::test]
    async fn a_reply_is_reused_within_its_second_and_generation_only() {
        let p = Counting::default();
        let replies = Replies::default();
        let get = |now| replies.get(&p, "dev", Interface::Container, now, body);
        let first = get(100).await.unwrap();
        assert_eq!(&first.body[..], b"ASIA0");
        let caller = TcpCaller {
            uid: Some(1000),
            addr: "127.0.0.1:4000".parse().unwrap(),
        };
        let mut line = Vec::new();
        first.audit.write_line(&caller, None, 1, &mut line);
        let record: rolecall_proto::audit::Record = serde_json::from_slice(&line).unwrap();
        let rolecall_proto::audit::Record::Credentials(h) = record else {
            panic!("not a hand-out: {record:?}")
        };
        assert_eq!(h.time, timefmt::rfc3339(100));
        assert_eq!(h.role.as_deref(), Some("Dev"));
        assert_eq!(h.caller.addr.as_deref(), Some("127.0.0.1:4000"));
        assert!(Arc::ptr_eq(&first, &get(100).await.unwrap()));
        assert_eq!(p.fetches.load(Ordering::SeqCst), 1);
        // The next second asks the provider again.
        assert_eq!(&get(101).await.unwrap().body[..], b"ASIA1");
        // So does a change of generation (a refresh, a logout) within the second.
        p.generation.fetch_add(1, Ordering::SeqCst);
        assert_eq!(&get(101).await.unwrap().body[..], b"ASIA2");
        assert_eq!(&get(101).await.unwrap().body[..], b"ASIA2");
        assert_eq!(p.fetches.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_provider_without_a_generation_is_asked_every_time() {
        struct Plain(Counting);
        #[async_trait::async_trait]
        impl CredentialProvider for Plain {
            async fn credentials(&self, p: &str) -> Result<RoleCredentials, ErrorBody> {
                self.0.credentials(p).await
            }
            fn profile(&self, p: &str) -> Option<ProfileInfo> {
                self.0.profile(p)
            }
        }
        let p = Plain(Counting::default());
        let replies = Replies::default();
        for _ in 0..3 {
            replies
                .get(&p, "dev", Interface::Imds, 7, body)
                .await
                .unwrap();
        }
        assert_eq!(p.0.fetches.load(Ordering::SeqCst), 3);
    }
}
