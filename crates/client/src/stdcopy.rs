//! Demultiplexing Docker's framed stdout/stderr streams (moby's `stdcopy.StdCopy`): each
//! frame is an 8-byte header (stream, 3 zero bytes, big-endian length) and its payload.

use berth_api::stream::{decode_frame_header, StdStream, FRAME_HEADER_LEN};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::ClientError;

/// Copies frames from `input` to `stdout` / `stderr` until the input ends. A
/// system-error frame ends the copy with its text as [`ClientError::Stream`].
pub async fn demux<R, O, E>(mut input: R, stdout: &mut O, stderr: &mut E) -> Result<(), ClientError>
where
    R: AsyncRead + Unpin,
    O: AsyncWrite + Unpin,
    E: AsyncWrite + Unpin,
{
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut payload = Vec::new();
    loop {
        match input.read_exact(&mut header).await {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err.into()),
        }
        let (stream, len) = decode_frame_header(header)?;
        payload.resize(len as usize, 0);
        input.read_exact(&mut payload).await?;
        match stream {
            StdStream::Stdout | StdStream::Stdin => {
                stdout.write_all(&payload).await?;
                stdout.flush().await?;
            }
            StdStream::Stderr => {
                stderr.write_all(&payload).await?;
                stderr.flush().await?;
            }
            StdStream::SystemErr => {
                return Err(ClientError::Stream(
                    String::from_utf8_lossy(&payload).into_owned(),
                ))
            }
        }
    }
}

/// Demultiplexes a complete buffer (tests, small log answers) into stdout and stderr.
pub async fn demux_bytes(input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ClientError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    demux(input, &mut stdout, &mut stderr).await?;
    Ok((stdout, stderr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::stream::encode_frame_header;

    fn frame(stream: StdStream, payload: &[u8]) -> Vec<u8> {
        let mut bytes = encode_frame_header(stream, payload.len() as u32).to_vec();
        bytes.extend_from_slice(payload);
        bytes
    }

    #[tokio::test]
    async fn frames_go_to_their_stream_in_order() {
        let mut input = frame(StdStream::Stdout, b"out 1\n");
        input.extend(frame(StdStream::Stderr, b"err\n"));
        input.extend(frame(StdStream::Stdout, b"out 2\n"));
        input.extend(frame(StdStream::Stdout, b""));
        let (stdout, stderr) = demux_bytes(&input).await.expect("demux");
        assert_eq!(stdout, b"out 1\nout 2\n");
        assert_eq!(stderr, b"err\n");
    }

    #[tokio::test]
    async fn system_error_frame_ends_the_stream_with_its_text() {
        let mut input = frame(StdStream::Stdout, b"partial");
        input.extend(frame(StdStream::SystemErr, b"container gone"));
        input.extend(frame(StdStream::Stdout, b"never"));
        let err = demux_bytes(&input).await.expect_err("system error");
        assert_eq!(err.to_string(), "container gone");
    }

    #[tokio::test]
    async fn truncated_payload_is_an_error_and_unknown_stream_too() {
        let mut input = encode_frame_header(StdStream::Stdout, 10).to_vec();
        input.extend_from_slice(b"abc");
        assert!(demux_bytes(&input).await.is_err());
        let bad = [9u8, 0, 0, 0, 0, 0, 0, 1, b'x'];
        let err = demux_bytes(&bad).await.expect_err("unknown stream");
        assert_eq!(err.to_string(), "unrecognized stream: 9");
    }
}
