namespace Parity.Backends.Workers;

/// <summary>
/// Constants of the worker protocol (docs/worker-protocol.md): JSON lines on stdin/stdout, one response
/// per request, tensors as little-endian base64 or file references.
/// </summary>
public static class WorkerProtocol
{
    /// <summary>
    /// The newest protocol version this harness speaks: version 2 workers report their optimizer state (the update count
    /// and every slot) in <c>read_state</c> and <c>step</c> answers, so their steps can be checked one by one.
    /// </summary>
    public const int Version = 2;

    /// <summary>
    /// The oldest version still accepted: a version 1 worker runs as before, is never asked for its optimizer state, and is
    /// judged only on its free-running trajectory. A worker announcing a version outside <see cref="OldestVersion"/> to
    /// <see cref="Version"/> is refused.
    /// </summary>
    public const int OldestVersion = 1;

    /// <summary>Time a request may take when <see cref="BackendOptions.Timeout"/> is not set.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(120);

    /// <summary>Time from process start to the <c>ready</c> line (TF.js wasm start-up takes a few seconds).</summary>
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Tensors of more raw bytes than this travel as a file in the session's exchange directory instead of
    /// inline base64, in both directions (the threshold and directory are sent in <c>build</c>). Base64 and
    /// JSON string handling of megabytes cost more than the step itself for a small MLP (measured: a
    /// 784-100-100-10 step at batch 1000 with full capture moves ~10 MB); raw files in the page cache do not.
    /// </summary>
    public const long DefaultFileThresholdBytes = 256L << 10;

    /// <summary>
    /// The longest stdout line the harness accepts, in bytes: past it the worker is killed and reported, so a worker
    /// that never ends a line cannot make the harness buffer gigabytes. Far above any answer whose large tensors
    /// travel as files; an answer of inline base64 tensors needs about 4/3 of their raw bytes.
    /// </summary>
    public const long MaxLineBytes = 256L << 20;

    /// <summary>Lines of worker stderr kept for error messages.</summary>
    public const int StderrTailLines = 20;
}
