using System.CommandLine;
using Parity.Harness;
using Parity.Tracing;

namespace Parity.Cli;

/// <summary><c>--trace-compression zstd|none</c>: how a run's traces store their values (docs/trace.md, "Compression").</summary>
internal static class TraceCompressionOption
{
    public static Option<string> Create() => new("--trace-compression")
    {
        Description = "How traces store tensor values: zstd (one compressed frame per tensor) or none (raw)",
        DefaultValueFactory = _ => Name(TraceCompressions.Default),
        HelpName = "zstd|none",
    };

    /// <summary><c>parity bench --trace zstd|none</c>: also write each step's record to a trace stored so; no trace without it.</summary>
    public static Option<string?> Bench() => new("--trace")
    {
        Description = "Also write every step's record to a trace (zstd or none), inside the timed step, and measure the trace's size and read speed",
        HelpName = "zstd|none",
    };

    public static TraceCompression Parse(string text) => text switch
    {
        "zstd" => TraceCompression.Zstd,
        "none" => TraceCompression.None,
        _ => throw new UsageException($"--trace-compression: '{text}' is not one of: zstd, none"),
    };

    private static string Name(TraceCompression compression) => compression == TraceCompression.Zstd ? "zstd" : "none";
}
