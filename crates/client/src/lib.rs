//! A typed Docker Engine API client over a unix socket (or TCP), used by the berth CLI and
//! the e2e tests. Knows the wire, not the engine.
