//! Request bodies (empty, whole, or fed through a channel for uploads such as `load`
//! and `import -`) and streamed response bodies read chunk by chunk or line by line.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming};
use hyper::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

use crate::error::ClientError;

/// The body of a request.
pub enum RequestBody {
    Empty,
    Full(Bytes),
    /// Chunks sent as they arrive; the body ends when the sender is dropped.
    Channel(mpsc::Receiver<Result<Bytes, std::io::Error>>),
}

impl RequestBody {
    /// A channel body and its sender.
    pub fn channel() -> (mpsc::Sender<Result<Bytes, std::io::Error>>, RequestBody) {
        let (sender, receiver) = mpsc::channel(8);
        (sender, RequestBody::Channel(receiver))
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        match this {
            RequestBody::Empty => Poll::Ready(None),
            RequestBody::Full(bytes) => {
                if bytes.is_empty() {
                    return Poll::Ready(None);
                }
                let data = std::mem::take(bytes);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            RequestBody::Channel(receiver) => match receiver.poll_recv(cx) {
                Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Empty => true,
            RequestBody::Full(bytes) => bytes.is_empty(),
            RequestBody::Channel(_) => false,
        }
    }
}

/// A successful answer whose body has not been read yet.
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub(crate) body: Incoming,
    pub(crate) path: String,
    buffer: Vec<u8>,
    ended: bool,
}

impl Response {
    pub(crate) fn new(response: hyper::Response<Incoming>, path: String) -> Response {
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        Response {
            status,
            headers: parts.headers,
            body,
            path,
            buffer: Vec::new(),
            ended: false,
        }
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The next chunk of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        if !self.buffer.is_empty() {
            return Ok(Some(Bytes::from(std::mem::take(&mut self.buffer))));
        }
        self.next_data().await
    }

    async fn next_data(&mut self) -> Result<Option<Bytes>, ClientError> {
        if self.ended {
            return Ok(None);
        }
        loop {
            let frame = std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_frame(cx)).await;
            match frame {
                None => {
                    self.ended = true;
                    return Ok(None);
                }
                Some(Err(err)) => return Err(err.into()),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if !data.is_empty() {
                            return Ok(Some(data));
                        }
                    }
                }
            }
        }
    }

    /// The next line of the body without its `\n` (a last unterminated line counts).
    pub async fn line(&mut self) -> Result<Option<Vec<u8>>, ClientError> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                return Ok(Some(line));
            }
            match self.next_data().await? {
                Some(data) => self.buffer.extend_from_slice(&data),
                None if self.buffer.is_empty() => return Ok(None),
                None => return Ok(Some(std::mem::take(&mut self.buffer))),
            }
        }
    }

    /// The next JSON value of a stream of concatenated or newline-separated objects
    /// (pull progress, events), skipping blank lines.
    pub async fn json_line<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ClientError> {
        loop {
            let Some(line) = self.line().await? else {
                return Ok(None);
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return serde_json::from_slice(&line)
                .map(Some)
                .map_err(|source| ClientError::Decode {
                    path: self.path.clone(),
                    source,
                });
        }
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Vec<u8>, ClientError> {
        let mut all = std::mem::take(&mut self.buffer);
        while let Some(data) = self.next_data().await? {
            all.extend_from_slice(&data);
        }
        Ok(all)
    }

    /// The whole body decoded as JSON.
    pub async fn json<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        let path = self.path.clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { path, source })
    }
}
