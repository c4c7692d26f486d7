//! berthd's core: containers and their shims, exec, logs, events, the image service, restart
//! policies and health, persistent state. It speaks its own types plus the Docker Config and
//! HostConfig a container was created with; it has no HTTP (that is berth-server) and never
//! links the OCI runtime (containers belong to shims).
