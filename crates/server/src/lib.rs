//! The Docker Engine API over HTTP: routes, version negotiation, hijacked attach and exec
//! streams, and the one mapping from error kinds to status codes. No container logic.
