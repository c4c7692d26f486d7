//! `docker push` of one tag. Layers go up concurrently (`max_concurrent_uploads`); a layer
//! berth keeps uncompressed is compressed on the way (gzip: `gzip.rs` at [`PUSH_LEVEL`];
//! zstd, daemon.json `push-compression`: libzstd's multi-threaded encoder at
//! [`ZSTD_LEVEL`]; both on every core) straight into a streamed PATCH, hashed as it goes,
//! and closed by a PUT with that digest: no compressed copy is written locally. What a push
//! learnt (the compressed digest and size per DiffID, and which repositories hold it,
//! `compressed.rs`) lets the next push of the same layer find it (HEAD) or mount it from
//! another repository of the registry without compressing. Progress lines carry the
//! DiffID's short id, as dockerd's do.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use berth_api::progress::{JsonMessage, ProgressDetail};
use berth_image::ImageRecord;
use berth_oci::{Algorithm, Digest, Digester, Reference};
use berth_registry::client::{MountOutcome, Progress, RegistryClient};
use tokio::sync::mpsc;

use super::compressed::{CompressedBlob, LayerSource, PushCompression, PushLayer, PushPlan};
use super::distribution::{layer_message, short, translate_registry_error, ProgressTx};
use super::{gzip, ImageError, ImageService, Inner};

/// libdeflate level for layers gzipped at push (gzip, so every registry and Docker version
/// pulls them). zlib's level 2 (flate2/zlib-rs, 1 MiB members) was chosen before against
/// zlib's 1 and 6 (benches/RESULTS.md, images, 2026-11-30 20:25 UTC); libdeflate's level 1
/// makes about the same bytes for less than half of its CPU (RESULTS "img8, session 8",
/// 1 MiB members, against the system zlib at 2: 150 MB of host binaries 57.8 MB in 0.81 s
/// against 57.5 MB in 1.9 s; the bench's 107 MB of text 48.4 MB in 0.75 s against 52.6 MB
/// in 1.41 s). Docker uses zlib's 6.
pub const PUSH_LEVEL: u32 = 1;

/// zstd level for layers compressed at push: 1, not libzstd's default 3 (containerd's and
/// BuildKit's `compression=zstd`). Measured with the zstd 1.5 tool (benches/RESULTS.md,
/// "img8, session 8"): on the bench's 107 MB of text level 1 takes 0.41 s of CPU for
/// 45.9 MB, level 3 0.70 s for 38.6 MB, and dockerd's gzip -6 pushes 46.2 MB; on 516 MB of
/// host binaries level 1 makes 198 MB in 1.5 s (gzip -2, berth's gzip push: 198 MB in
/// 8.3 s; gzip -6: 183 MB in 21.7 s; zstd -3: 178 MB in 2.6 s). A push is bound by this CPU
/// (berthd's push at level 3 spent 1.1 s of CPU, 85% in libzstd, for 0.73 s of wall time
/// on 2 cores), so level 1 takes a third off the push for about the bytes Docker's gzip
/// sends (fewer on text, 8% more on binaries).
pub const ZSTD_LEVEL: i32 = 1;

/// Compressed chunks queued between the compressor and the upload.
const QUEUED_CHUNKS: usize = 8;

/// Uncompressed bytes between two `Pushing` progress lines.
const PROGRESS_STEP: u64 = 1 << 20;

/// Where one push goes.
#[derive(Clone)]
struct Target {
    client: Arc<RegistryClient>,
    /// The repository path in the registry (`library/busybox`).
    repo: String,
    /// `host/path`, the key under which pushed blobs are remembered.
    repository: String,
    host: String,
}

impl ImageService {
    /// Pushes `record` as `tagged` and reports the digest lines.
    pub(super) async fn push_one(
        &self,
        client: &Arc<RegistryClient>,
        tagged: &Reference,
        record: &ImageRecord,
        tx: &ProgressTx,
    ) -> Result<(), ImageError> {
        let _in_flight = self.gc_gate.read().await;
        let target = record.target.clone();
        let compression = self.push_compression;
        let plan = self
            .blocking(move |inner| inner.push_plan(&target, compression))
            .await?;
        let tag = tagged.tag().unwrap_or("latest").to_string();
        let where_to = Target {
            client: client.clone(),
            repo: tagged.path().to_string(),
            repository: format!("{}/{}", tagged.domain(), tagged.path()),
            host: tagged.domain().to_string(),
        };
        let pushed = match plan {
            Some(plan) => self.push_manifest(&where_to, &tag, plan, tx).await,
            None => self.push_index(&where_to, &tag, record, tx).await,
        };
        let (digest, size) = pushed.map_err(|e| match e {
            ImageError::Registry(e) => translate_registry_error(*e, tagged, "push"),
            other => other,
        })?;
        let _ = tx.send(JsonMessage::status(format!(
            "{tag}: digest: {digest} size: {size}"
        )));
        let _ = tx.send(JsonMessage {
            progress_detail: Some(ProgressDetail::default()),
            aux: Some(serde_json::json!({"Tag": tag, "Digest": digest.to_string(), "Size": size})),
            ..JsonMessage::default()
        });
        let (id, digest_ref) = (record.id.clone(), tagged.repository().with_digest(digest));
        self.blocking(move |inner| {
            let _ = inner.images.add_digest(&id, &digest_ref);
            Ok(())
        })
        .await?;
        let name = tagged.familiar_string();
        self.publish("push", &name, &name);
        Ok(())
    }

    /// An image manifest: its layers concurrently, then the config, then the manifest
    /// with the compressed layers' descriptors; returns its digest and size.
    async fn push_manifest(
        &self,
        target: &Target,
        tag: &str,
        plan: PushPlan,
        tx: &ProgressTx,
    ) -> Result<(Digest, u64), ImageError> {
        for layer in plan.layers.iter().rev() {
            let _ = tx.send(layer_message(&layer.diff_id, "Preparing"));
        }
        let limit = Arc::new(tokio::sync::Semaphore::new(
            target.client.options().max_concurrent_uploads.max(1),
        ));
        // The config goes up beside the layers (the manifest PUT below is the only thing
        // that needs it there), not after the slowest one: 3 round trips off the push's tail.
        let config_push = {
            let (client, repo, inner, config) = (
                target.client.clone(),
                target.repo.clone(),
                self.inner.clone(),
                plan.config.clone(),
            );
            AbortOnDrop(tokio::spawn(async move {
                client
                    .push_blob(&repo, &config, &inner.content, None, None)
                    .await
            }))
        };
        let mut tasks = tokio::task::JoinSet::new();
        let compression = self.push_compression;
        for (n, layer) in plan.layers.iter().cloned().enumerate() {
            let (inner, target, tx, limit) = (
                self.inner.clone(),
                target.clone(),
                tx.clone(),
                limit.clone(),
            );
            tasks.spawn(async move {
                let _slot = limit.acquire_owned().await;
                (
                    n,
                    push_layer(&inner, &target, layer, compression, &tx).await,
                )
            });
        }
        let mut pushed: Vec<Option<CompressedBlob>> = vec![None; plan.layers.len()];
        while let Some(done) = tasks.join_next().await {
            let (n, result) = done?;
            // The first failure ends the push; the other uploads are dropped with the set.
            pushed[n] = result?;
        }
        let config = plan.config.clone();
        config_push.wait().await??;
        let manifest = self
            .blocking(move |inner| {
                let manifest = plan
                    .manifest_bytes(&pushed)
                    .map_err(|e| ImageError::Broken {
                        image: config.to_string(),
                        reason: e.to_string(),
                    })?;
                if manifest.changed {
                    berth_image::blob::put(&inner.content, &manifest.bytes)?;
                }
                Ok(manifest)
            })
            .await?;
        let size = manifest.bytes.len() as u64;
        let digest = target
            .client
            .put_manifest(&target.repo, tag, &manifest.media_type, manifest.bytes)
            .await?;
        Ok((digest, size))
    }

    /// An index: pushed as stored with everything it references, progress shown for the
    /// layers of its image.
    async fn push_index(
        &self,
        target: &Target,
        tag: &str,
        record: &ImageRecord,
        tx: &ProgressTx,
    ) -> Result<(Digest, u64), ImageError> {
        let (manifest, record) = (record.target.digest.clone(), record.clone());
        let layers = self
            .blocking(move |inner| {
                let resolved = inner.resolve(&record)?;
                Ok(resolved
                    .manifest
                    .layers
                    .iter()
                    .zip(resolved.config.diff_ids())
                    .map(|(l, d)| (l.digest.clone(), d.clone()))
                    .collect::<BTreeMap<Digest, Digest>>())
            })
            .await?;
        for diff_id in layers.values() {
            let _ = tx.send(layer_message(diff_id, "Preparing"));
        }
        let (events, forward) = forward_events(layers, tx.clone());
        let pushed = target
            .client
            .push(
                &target.repo,
                tag,
                &manifest,
                &self.inner.content,
                None,
                Some(&events),
            )
            .await;
        drop(events);
        forward.await?;
        let digest = pushed?;
        let size = self.inner.content.info(&digest)?.size;
        Ok((digest, size))
    }
}

/// A spawned task that ends when its handle is dropped (a failed push leaves no upload
/// running).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn wait(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Turns the registry client's events for stored blobs (`blob -> DiffID`) into Docker's
/// push lines.
fn forward_events(
    layers: BTreeMap<Digest, Digest>,
    tx: ProgressTx,
) -> (mpsc::UnboundedSender<Progress>, tokio::task::JoinHandle<()>) {
    let (events_tx, mut events_rx) = mpsc::unbounded_channel::<Progress>();
    let forward = tokio::spawn(async move {
        while let Some(event) = events_rx.recv().await {
            let message = match event {
                Progress::Pushing {
                    digest,
                    current,
                    total,
                } => layers.get(&digest).map(|id| {
                    JsonMessage::layer_progress(&short(id), "Pushing", current as i64, total as i64)
                }),
                Progress::Pushed { digest } => {
                    layers.get(&digest).map(|id| layer_message(id, "Pushed"))
                }
                Progress::AlreadyExists { digest } => layers
                    .get(&digest)
                    .map(|id| layer_message(id, "Layer already exists")),
                Progress::Mounted { digest, from } => layers
                    .get(&digest)
                    .map(|id| layer_message(id, &format!("Mounted from {from}"))),
                _ => None,
            };
            if let Some(message) = message {
                let _ = tx.send(message);
            }
        }
    });
    (events_tx, forward)
}

/// Pushes one layer; for an uncompressed one returns the `compression` blob now in the
/// registry (and remembers where it is).
async fn push_layer(
    inner: &Arc<Inner>,
    target: &Target,
    layer: PushLayer,
    compression: PushCompression,
    tx: &ProgressTx,
) -> Result<Option<CompressedBlob>, ImageError> {
    let (uncompressed, size, known) = match layer.source {
        LayerSource::Stored { digest } => {
            push_stored(inner, target, &digest, &layer.diff_id, tx).await?;
            return Ok(None);
        }
        LayerSource::Compress { layer, size, known } => (layer, size, known),
    };
    let upload = Upload {
        layer: uncompressed.clone(),
        size,
        diff_id: layer.diff_id.clone(),
        compression,
    };
    let blob = match known {
        Some(known) => match reuse(inner, target, &known, &layer.diff_id, tx).await? {
            true => known,
            false => compress_upload(inner, target, &upload, tx).await?,
        },
        None => compress_upload(inner, target, &upload, tx).await?,
    };
    let (inner, remembered, repository) = (inner.clone(), blob.clone(), target.repository.clone());
    tokio::task::spawn_blocking(move || {
        inner.remember_compressed(&uncompressed, &remembered, &repository)
    })
    .await??;
    Ok(Some(blob))
}

/// A blob from the store, through the client's HEAD check and upload.
async fn push_stored(
    inner: &Inner,
    target: &Target,
    digest: &Digest,
    diff_id: &Digest,
    tx: &ProgressTx,
) -> Result<(), ImageError> {
    let (events, forward) = forward_events(
        BTreeMap::from([(digest.clone(), diff_id.clone())]),
        tx.clone(),
    );
    let pushed = target
        .client
        .push_blob(&target.repo, digest, &inner.content, None, Some(&events))
        .await;
    drop(events);
    forward.await?;
    pushed?;
    Ok(())
}

/// Whether the registry has (or now mounts) the blob an earlier push made; a blob
/// an older berth kept in the store is uploaded from there.
async fn reuse(
    inner: &Inner,
    target: &Target,
    known: &CompressedBlob,
    diff_id: &Digest,
    tx: &ProgressTx,
) -> Result<bool, ImageError> {
    let client = &target.client;
    if client.blob_exists(&target.repo, &known.digest).await? {
        let _ = tx.send(layer_message(diff_id, "Layer already exists"));
        return Ok(true);
    }
    for from in known.mount_sources(&target.host, &target.repo) {
        // A refused mount (unknown source, no pull access) just means: try the next.
        if let Ok(MountOutcome::Mounted) =
            client.mount_blob(&target.repo, &known.digest, &from).await
        {
            let _ = tx.send(layer_message(diff_id, &format!("Mounted from {from}")));
            return Ok(true);
        }
    }
    if inner.content.contains(&known.digest) {
        push_stored(inner, target, &known.digest, diff_id, tx).await?;
        return Ok(true);
    }
    Ok(false)
}

/// One uncompressed layer to compress into an upload.
struct Upload {
    /// The stored uncompressed blob and its size.
    layer: Digest,
    size: u64,
    diff_id: Digest,
    compression: PushCompression,
}

/// Compresses a stored layer into a streamed upload; returns the blob it became.
async fn compress_upload(
    inner: &Arc<Inner>,
    target: &Target,
    upload: &Upload,
    tx: &ProgressTx,
) -> Result<CompressedBlob, ImageError> {
    let (layer, diff_id) = (&upload.layer, &upload.diff_id);
    let client = &target.client;
    let location = client.start_upload(&target.repo).await?;
    let (body_tx, body_rx) = mpsc::channel(QUEUED_CHUNKS);
    let producer = {
        let (inner, layer, id, tx) = (inner.clone(), layer.clone(), short(diff_id), tx.clone());
        let (total, compression) = (upload.size, upload.compression);
        tokio::task::spawn_blocking(move || {
            let progress = Counted {
                id,
                tx,
                total,
                read: 0,
                reported: 0,
            };
            compress_layer(&inner, &layer, compression, progress, body_tx)
        })
    };
    let patched = client.patch_stream(&target.repo, location, body_rx).await;
    let produced = producer.await?;
    let next = match (produced, patched) {
        (Ok(blob), Ok(next)) => (blob, next),
        // The registry stopped reading: its answer says why, not our closed channel.
        (Err(e), Err(upload)) if e.kind() == io::ErrorKind::BrokenPipe => return Err(upload.into()),
        (Err(source), patched) => {
            if let Ok(next) = patched {
                client.cancel_upload(&target.repo, next).await;
            }
            return Err(ImageError::Io {
                op: upload.compression.as_str(),
                path: inner.content.blob_path(layer),
                source,
            });
        }
        (Ok(_), Err(upload)) => return Err(upload.into()),
    };
    let (blob, location) = next;
    client
        .finish_upload(&target.repo, location, &blob.digest)
        .await?;
    let _ = tx.send(layer_message(diff_id, "Pushed"));
    Ok(blob)
}

/// Runs on the blocking pool: the layer through the compressor into the upload's channel.
fn compress_layer(
    inner: &Inner,
    layer: &Digest,
    compression: PushCompression,
    progress: Counted,
    body: mpsc::Sender<io::Result<Vec<u8>>>,
) -> io::Result<CompressedBlob> {
    let reader = inner.content.reader(layer).map_err(io::Error::other)?;
    let mut input = CountedReader { reader, progress };
    let mut output = BodyWriter {
        body,
        digester: Digester::new(Algorithm::Sha256),
        written: 0,
    };
    let threads = gzip::default_threads();
    let output = match compression {
        PushCompression::Gzip => {
            gzip::compress(&mut input, &mut output, PUSH_LEVEL, threads)?;
            output
        }
        PushCompression::Zstd => zstd_compress(&mut input, output, threads)?,
    };
    input.progress.report(true);
    Ok(CompressedBlob {
        digest: output.digester.finish(),
        size: output.written,
        compression,
        repositories: Default::default(),
    })
}

/// `input` as one zstd frame at [`ZSTD_LEVEL`] into `output`, compressed by `threads`
/// workers; returns `output`.
fn zstd_compress<W: Write>(input: &mut dyn Read, output: W, threads: usize) -> io::Result<W> {
    let mut encoder = zstd::stream::write::Encoder::new(output, ZSTD_LEVEL)?;
    // Multi-threaded mode with any worker count makes the same bytes (libzstd's
    // ZSTD_c_nbWorkers contract), so a layer gets the same digest on every host.
    encoder.multithread(threads.max(1) as u32)?;
    copy_in_large_writes(input, &mut encoder)?;
    encoder.finish()
}

/// `io::copy` with 1 MiB writes: libzstd's streaming call has a fixed cost per write and
/// `io::copy`'s buffer is 8 KiB.
fn copy_in_large_writes(input: &mut dyn Read, output: &mut dyn Write) -> io::Result<u64> {
    let mut buffer = vec![0u8; gzip::CHUNK];
    let mut total = 0u64;
    loop {
        let n = match input.read(&mut buffer) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        output.write_all(&buffer[..n])?;
        total += n as u64;
    }
}

/// `Pushing` progress counted on the uncompressed bytes, as dockerd counts it.
struct Counted {
    id: String,
    tx: ProgressTx,
    total: u64,
    read: u64,
    reported: u64,
}

impl Counted {
    fn report(&mut self, last: bool) {
        if last || self.read >= self.reported + PROGRESS_STEP {
            self.reported = self.read;
            let _ = self.tx.send(JsonMessage::layer_progress(
                &self.id,
                "Pushing",
                self.read as i64,
                self.total as i64,
            ));
        }
    }
}

struct CountedReader<R> {
    reader: R,
    progress: Counted,
}

impl<R: Read> Read for CountedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.progress.read += n as u64;
        self.progress.report(false);
        Ok(n)
    }
}

/// The gzip output: hashed, counted and handed to the upload; a closed upload is
/// `BrokenPipe`.
struct BodyWriter {
    body: mpsc::Sender<io::Result<Vec<u8>>>,
    digester: Digester,
    written: u64,
}

impl Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.body
            .blocking_send(Ok(buf.to_vec()))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the upload stopped"))?;
        self.digester.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Text-like input (gzip's test words) larger than one libzstd job at [`ZSTD_LEVEL`]
    /// (2 MiB), so several workers really share it.
    fn text(size: usize) -> Vec<u8> {
        super::super::gzip::tests::words(size)
    }

    #[test]
    fn zstd_push_blob_is_the_same_bytes_for_any_worker_count_and_decodes_to_the_layer() {
        let layer = text(5 << 20);
        let one = zstd_compress(&mut &layer[..], Vec::new(), 1).expect("1 worker");
        for threads in [0, 2, 4] {
            let other = zstd_compress(&mut &layer[..], Vec::new(), threads).expect("compress");
            assert!(other == one, "{threads} workers made other bytes");
        }
        assert!(
            one.len() < layer.len() / 2,
            "compressed: {} bytes",
            one.len()
        );
        let decoded = zstd::stream::decode_all(&one[..]).expect("decode");
        assert!(decoded == layer, "round trip");
    }

    #[test]
    fn an_empty_layer_is_one_valid_zstd_frame() {
        let frame = zstd_compress(&mut &b""[..], Vec::new(), 2).expect("compress");
        assert_eq!(&frame[..4], &[0x28, 0xb5, 0x2f, 0xfd], "zstd magic");
        assert!(zstd::stream::decode_all(&frame[..])
            .expect("decode")
            .is_empty());
    }
}
