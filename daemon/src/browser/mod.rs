//! The DevTools-protocol driver that captures the SAML POST (entra-saml). PLACEHOLDER.
