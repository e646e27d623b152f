use super::*;

#[derive(Default)]
pub(crate) struct Counting(pub Mutex<Vec<Note>>);

impl Sender for Counting {
    fn send(&self, note: &Note) {
        self.0.lock().unwrap().push(note.clone());
    }
}

fn signin(source: &str, epoch: u64) -> Event {
    Event::SignInNeeded {
        source: source.into(),
        epoch,
    }
}

#[tokio::test(start_paused = true)]
async fn each_event_is_told_once() {
    let c = Arc::new(Counting::default());
    let n = Notifications::new(c.clone());
    assert!(n.tell(signin("corp", 1)));
    assert!(!n.tell(signin("corp", 1)));
    // A new session lost later is a new event.
    assert!(n.tell(signin("corp", 2)));
    let notes = c.0.lock().unwrap();
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].summary, "sign-in needed for corp");
    assert!(notes[0].body.contains("rolecall login corp"));
    assert_eq!(notes[0].login_action.as_deref(), Some("corp"));
}

#[tokio::test(start_paused = true)]
async fn rate_limited_then_allowed_again() {
    let c = Arc::new(Counting::default());
    let n = Notifications::new(c.clone());
    for i in 0..(RATE_LIMIT as u64 + 3) {
        n.tell(signin("corp", i));
    }
    assert_eq!(c.0.lock().unwrap().len(), RATE_LIMIT);
    tokio::time::advance(RATE_WINDOW).await;
    assert!(n.tell(signin("corp", 100)));
    assert_eq!(c.0.lock().unwrap().len(), RATE_LIMIT + 1);
}

#[tokio::test(start_paused = true)]
async fn off_means_nothing_is_sent() {
    let c = Arc::new(Counting::default());
    let n = Notifications::new(c.clone());
    n.set_enabled(false);
    assert!(!n.tell(signin("corp", 1)));
    assert!(c.0.lock().unwrap().is_empty());
}

#[test]
fn wording() {
    let e = Event::EndsSoon {
        name: "legacy".into(),
        source: "saml".into(),
        end: 1_000 + 15 * 60,
        now: 1_000,
    };
    let n = e.note();
    assert_eq!(n.summary, "legacy ends in 15 minutes");
    assert!(n.body.contains("rolecall login saml"));
    let e = Event::EndsSoon {
        name: "legacy".into(),
        source: "saml".into(),
        end: 1_030,
        now: 1_000,
    };
    assert_eq!(e.note().summary, "legacy ends in 1 minute");
    let s = Event::SignedIn {
        source: "corp".into(),
        at: 5,
    }
    .note();
    assert_eq!(s.summary, "signed in");
    assert_eq!(s.body, "rolecall signed in to corp");
    assert_eq!(s.login_action, None);
}
