//! AWS SDK failures that carry no service answer (timeouts, connections that fail or drop,
//! unreadable replies, requests never sent), read the same way by every source.

use aws_smithy_runtime_api::client::result::SdkError;

/// A failure without a service answer: what to tell the user and whether trying again later
/// can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub message: &'static str,
    pub retryable: bool,
}

/// Callers read a service error themselves (its code decides); for one this says only
/// "service error", not retryable.
pub fn transport<E, R>(e: &SdkError<E, R>) -> Transport {
    let (message, retryable) = match e {
        SdkError::ServiceError(_) => ("service error", false),
        SdkError::TimeoutError(_) => ("timed out", true),
        SdkError::DispatchFailure(d) if d.is_timeout() => ("timed out", true),
        SdkError::DispatchFailure(_) => ("cannot connect", true),
        SdkError::ResponseError(_) => ("unreadable response", true),
        SdkError::ConstructionFailure(_) => ("request could not be built", false),
        _ => ("the request could not be sent", false),
    };
    Transport { message, retryable }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    type E = SdkError<std::io::Error, ()>;

    #[test]
    fn timeouts_and_dropped_connections_are_retryable_unsent_requests_are_not() {
        let io = || std::io::Error::other("x");
        let t = transport(&E::timeout_error(io()));
        assert_eq!((t.message, t.retryable), ("timed out", true));
        let t = transport(&E::dispatch_failure(ConnectorError::io(io().into())));
        assert_eq!((t.message, t.retryable), ("cannot connect", true));
        let t = transport(&E::dispatch_failure(ConnectorError::timeout(io().into())));
        assert_eq!((t.message, t.retryable), ("timed out", true));
        let t = transport(&E::response_error(io(), ()));
        assert_eq!((t.message, t.retryable), ("unreadable response", true));
        let t = transport(&E::construction_failure(io()));
        assert_eq!(
            (t.message, t.retryable),
            ("request could not be built", false)
        );
        assert!(!transport(&E::service_error(io(), ())).retryable);
    }
}
