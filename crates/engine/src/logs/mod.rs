//! Reading a container's json-file log: tail, since, until, timestamps, follow (skeleton).
