//! The one place that talks rtnetlink: a current-thread tokio runtime on the calling std
//! thread (always a dedicated thread, see `bridge.rs` and `NetNs::run`), so the netlink
//! socket is created in that thread's network namespace and no tokio worker ever runs this.

use std::future::Future;
use std::net::IpAddr;

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlag, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlag, LinkMessage};
use rtnetlink::Handle;

use crate::error::NetError;

/// Runs `f` with a fresh rtnetlink connection on a current-thread runtime of this thread.
pub(crate) fn block_on<T, F, Fut>(f: F) -> Result<T, NetError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, NetError>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(NetError::Runtime)?;
    runtime.block_on(async move {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetError::Socket)?;
        let driver = tokio::spawn(connection);
        let result = f(handle).await;
        driver.abort();
        result
    })
}

/// Wraps an rtnetlink error with what was being done.
pub(crate) fn failed(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetError {
    let op = op.into();
    move |source| NetError::Netlink {
        op,
        source: Box::new(source),
    }
}

/// The errno of a netlink NACK (positive), if that is what `err` is.
pub(crate) fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| -code.get()),
        _ => None,
    }
}

/// Index of the link called `name`, None if there is none.
pub(crate) async fn link_index(handle: &Handle, name: &str) -> Result<Option<u32>, NetError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(link)) => Ok(Some(link.header.index)),
        Ok(None) => Ok(None),
        Err(err) if errno(&err) == Some(libc::ENODEV) => Ok(None),
        Err(err) => Err(NetError::Netlink {
            op: format!("get link {name}"),
            source: Box::new(err),
        }),
    }
}

/// Index of the link called `name`, or NoSuchInterface.
pub(crate) async fn require_link(handle: &Handle, name: &str) -> Result<u32, NetError> {
    link_index(handle, name)
        .await?
        .ok_or_else(|| NetError::NoSuchInterface(name.to_string()))
}

/// Sets the link called `name` up.
pub(crate) async fn link_up(handle: &Handle, name: &str) -> Result<(), NetError> {
    let index = require_link(handle, name).await?;
    handle
        .link()
        .set(index)
        .up()
        .execute()
        .await
        .map_err(failed(format!("set {name} up")))
}

/// Adds `addr/prefix` to link `index`; Ok if it is already there. IPv6 addresses skip
/// duplicate address detection (as Docker's libnetwork does), so they are usable at once.
pub(crate) async fn add_address(
    handle: &Handle,
    index: u32,
    addr: IpAddr,
    prefix: u8,
) -> Result<(), NetError> {
    let mut request = handle.address().add(index, addr, prefix);
    if addr.is_ipv6() {
        let message: &mut AddressMessage = request.message_mut();
        message
            .attributes
            .push(AddressAttribute::Flags(vec![AddressFlag::Nodad]));
    }
    match request.execute().await {
        Ok(()) => Ok(()),
        Err(err) if errno(&err) == Some(libc::EEXIST) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            op: format!("add address {addr}/{prefix}"),
            source: Box::new(source),
        }),
    }
}

/// Deletes the link at `index`; Ok if it vanished meanwhile.
pub(crate) async fn delete_link(handle: &Handle, index: u32, name: &str) -> Result<(), NetError> {
    match handle.link().del(index).execute().await {
        Ok(()) => Ok(()),
        Err(err) if errno(&err) == Some(libc::ENODEV) => Ok(()),
        Err(source) => Err(NetError::Netlink {
            op: format!("delete link {name}"),
            source: Box::new(source),
        }),
    }
}

/// A link message flagged up (used to build veth pairs by hand).
pub(crate) fn up_link_message(attributes: Vec<LinkAttribute>) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.flags.push(LinkFlag::Up);
    message.header.change_mask.push(LinkFlag::Up);
    message.attributes = attributes;
    message
}
