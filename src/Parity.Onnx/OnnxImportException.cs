namespace Parity.Onnx;

/// <summary>
/// An ONNX file that cannot be turned into a spec: not an ONNX model, not a sequential MLP, or an
/// operator outside the supported set. The message names the file and, where one is at fault, the
/// node (name and operator type).
/// </summary>
public sealed class OnnxImportException : Exception
{
    /// <summary>Creates the exception.</summary>
    public OnnxImportException(string file, string problem, string? nodeName = null, string? opType = null, Exception? inner = null)
        : base($"{file}: " + (opType is null ? "" : $"node '{nodeName}' ({opType}): ") + problem, inner)
    {
        File = file;
        Problem = problem;
        NodeName = nodeName;
        OpType = opType;
    }

    /// <summary>The ONNX file (or the name given for in-memory bytes).</summary>
    public string File { get; }

    /// <summary>What is wrong.</summary>
    public string Problem { get; }

    /// <summary>The node at fault, when there is one.</summary>
    public string? NodeName { get; }

    /// <summary>The operator type of that node.</summary>
    public string? OpType { get; }
}
