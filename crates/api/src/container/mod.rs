//! Container wire models: configuration, create, inspect, list, stats and the verbs.

pub mod config;
pub mod host_config;
pub mod inspect;
pub mod list;
pub mod ops;
pub mod stats;

pub use config::{Config, HealthConfig};
pub use host_config::{HostConfig, Mount, PortBinding, PortMap, Resources, RestartPolicy};
pub use inspect::{ContainerInspect, ContainerState, Health, MountPoint, NetworkSettings};
pub use list::{ContainerSummary, Port};
pub use ops::{
    ContainerCreateRequest, ContainerCreateResponse, ContainerUpdateRequest, ContainerWaitResponse,
    ExecCreateRequest, ExecInspect, RequestBodyError,
};
pub use stats::StatsResponse;
