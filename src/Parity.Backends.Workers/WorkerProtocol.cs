namespace Parity.Backends.Workers;

/// <summary>
/// Constants of the worker protocol (docs/worker-protocol.md): JSON lines on stdin/stdout, one response
/// per request, tensors as little-endian base64 or file references.
/// </summary>
public static class WorkerProtocol
{
    /// <summary>The protocol version this harness speaks; a worker announcing another is refused.</summary>
    public const int Version = 1;

    /// <summary>Time a request may take when <see cref="BackendOptions.Timeout"/> is not set.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Time from process start to the <c>ready</c> line (TF.js wasm start-up takes a few seconds).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Tensors of more raw bytes than this travel as a file reference instead of inline base64 (the
    /// harness writes such batches to a temp file; a worker may answer with files above the same size).
    /// 8 MiB keeps a 784-feature batch of 1000 float32 samples (3.1 MB) inline.
    /// </summary>
    public const long DefaultFileThresholdBytes = 8L << 20;

    /// <summary>Lines of worker stderr kept for error messages.</summary>
    public const int StderrTailLines = 20;
}
