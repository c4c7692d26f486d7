//! Attach, logs and exec streams: Docker's 8-byte multiplexed frame header (stdcopy)
//! and the content types that tell a client whether frames or raw bytes follow.

/// Content type of a multiplexed (non-TTY) stream, API 1.42+.
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";
/// Content type of a raw (TTY) stream, API 1.42+.
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";

/// Which stream a frame carries; the first header byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StdStream {
    Stdin = 0,
    Stdout = 1,
    Stderr = 2,
    /// Docker's `systemerr`: an error from the daemon ending the stream.
    SystemErr = 3,
}

/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 8;

/// Errors decoding a frame header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unrecognized stream: {0}")]
    UnknownStream(u8),
}

/// Encodes a frame header: stream byte, three zero bytes, big-endian payload length.
pub fn encode_frame_header(stream: StdStream, payload_len: u32) -> [u8; FRAME_HEADER_LEN] {
    let mut header = [0u8; FRAME_HEADER_LEN];
    header[0] = stream as u8;
    header[4..].copy_from_slice(&payload_len.to_be_bytes());
    header
}

/// Decodes a frame header into its stream and payload length. The three padding bytes
/// are ignored, as docker/cli's `stdcopy` ignores them.
pub fn decode_frame_header(header: [u8; FRAME_HEADER_LEN]) -> Result<(StdStream, u32), FrameError> {
    let stream = match header[0] {
        0 => StdStream::Stdin,
        1 => StdStream::Stdout,
        2 => StdStream::Stderr,
        3 => StdStream::SystemErr,
        other => return Err(FrameError::UnknownStream(other)),
    };
    let len = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    Ok((stream, len))
}

/// One decoded frame: its stream and payload.
pub type Frame<'a> = (StdStream, &'a [u8]);

/// Splits a complete buffer of frames into `(stream, payload)` pairs; a trailing
/// partial frame is returned as the unconsumed remainder.
pub fn split_frames(mut buffer: &[u8]) -> Result<(Vec<Frame<'_>>, &[u8]), FrameError> {
    let mut frames = Vec::new();
    while buffer.len() >= FRAME_HEADER_LEN {
        let mut header = [0u8; FRAME_HEADER_LEN];
        header.copy_from_slice(&buffer[..FRAME_HEADER_LEN]);
        let (stream, len) = decode_frame_header(header)?;
        let end = FRAME_HEADER_LEN + len as usize;
        if buffer.len() < end {
            break;
        }
        frames.push((stream, &buffer[FRAME_HEADER_LEN..end]));
        buffer = &buffer[end..];
    }
    Ok((frames, buffer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn frame_header_matches_stdcopy_layout() {
        assert_eq!(
            encode_frame_header(StdStream::Stderr, 0x0102_0304),
            [2, 0, 0, 0, 1, 2, 3, 4]
        );
        assert_eq!(
            decode_frame_header([1, 9, 9, 9, 0, 0, 0, 5]),
            Ok((StdStream::Stdout, 5))
        );
        assert_eq!(
            decode_frame_header([7, 0, 0, 0, 0, 0, 0, 0]).map_err(|e| e.to_string()),
            Err("unrecognized stream: 7".to_string())
        );
    }

    #[test]
    fn frames_split_and_keep_a_partial_tail() {
        let mut bytes = encode_frame_header(StdStream::Stdout, 3).to_vec();
        bytes.extend_from_slice(b"hi\n");
        bytes.extend_from_slice(&encode_frame_header(StdStream::Stderr, 4));
        bytes.extend_from_slice(b"er");
        let (frames, rest) = split_frames(&bytes).expect("split");
        assert_eq!(frames, vec![(StdStream::Stdout, &b"hi\n"[..])]);
        assert_eq!(rest.len(), FRAME_HEADER_LEN + 2);
    }

    proptest! {
        #[test]
        fn splitting_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok((frames, rest)) = split_frames(&bytes) {
                let used: usize = frames.iter().map(|(_, p)| p.len() + FRAME_HEADER_LEN).sum();
                prop_assert_eq!(used + rest.len(), bytes.len());
            }
        }
    }
}
