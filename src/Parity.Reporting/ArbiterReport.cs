namespace Parity.Reporting;

/// <summary>ONNX Runtime's verdict on one training backend's checkpoint (docs/onnx.md).</summary>
/// <param name="Backend">The training backend.</param>
/// <param name="Step">The checkpoint's step.</param>
/// <param name="Verdict"><c>agree</c>, <c>diverge</c> or <c>error</c>.</param>
/// <param name="Message">What differs, or why there is no verdict.</param>
/// <param name="Tensors">Each eval tensor: the backend's own value against ORT's.</param>
public sealed record ArbiterReport(string Backend, int Step, Running.Verdict Verdict, string? Message, IReadOnlyList<ArbiterTensor> Tensors)
{
    /// <summary>
    /// ONNX Runtime as it ran: <c>onnxruntime</c> (version), <c>executionProvider</c> (<c>CUDAExecutionProvider</c> or
    /// <c>CPUExecutionProvider</c>) and, on the CPU, <c>cudaNotUsed</c> (ONNX Runtime's reason); empty when it did not run.
    /// </summary>
    public IReadOnlyDictionary<string, string> Runtime { get; init; } = new Dictionary<string, string>();
}

/// <summary>One eval tensor of an arbitration.</summary>
/// <param name="Tensor">kind:site.</param>
/// <param name="MaxAbs">Largest absolute difference.</param>
/// <param name="MaxRel">Largest relative difference.</param>
/// <param name="Score">Observed / allowed error (above 1 fails).</param>
/// <param name="Passed">Within tolerance.</param>
public sealed record ArbiterTensor(string Tensor, double MaxAbs, double MaxRel, double Score, bool Passed);
