using Parity.Running;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Comparison;

/// <summary>One pair of backends in the pairwise matrix.</summary>
/// <param name="Expected">Backend judged as expected in this pair (the higher precision; the earlier one on a tie).</param>
/// <param name="Actual">The other backend.</param>
/// <param name="Verdict">Agree, diverge or error.</param>
/// <param name="Message">The error message, if any.</param>
/// <param name="FirstDivergence">Where they first differ, origin or inherited; null when they agree.</param>
/// <param name="TensorsCompared">Tensors compared.</param>
/// <param name="TensorsFailed">Counted failures.</param>
public sealed record PairwiseCell(string Expected, string Actual, Verdict Verdict, string? Message, Divergence? FirstDivergence,
    int TensorsCompared, int TensorsFailed)
{
    /// <summary>Step of the first divergence, or null.</summary>
    public int? Step => FirstDivergence?.Step;

    /// <summary>Kind and site of the first divergence, or null.</summary>
    public TensorKey? Key => FirstDivergence?.Key;
}

/// <summary>Every pair of backends compared under one policy; symmetric, no diagonal.</summary>
/// <param name="Backends">Backend names in the order given (rows and columns).</param>
/// <param name="Cells">One cell per unordered pair.</param>
public sealed record PairwiseResult(IReadOnlyList<string> Backends, IReadOnlyList<PairwiseCell> Cells)
{
    /// <summary>The cell of backends <paramref name="a"/> and <paramref name="b"/> in either order; null on the diagonal or for unknown names.</summary>
    public PairwiseCell? Cell(string a, string b) =>
        Cells.FirstOrDefault(c => (c.Expected == a && c.Actual == b) || (c.Expected == b && c.Actual == a));
}

/// <summary>
/// Compares every pair of traces with <see cref="TraceComparer"/> (same policy) for the report's
/// backend x backend matrix. Within a pair the float64 trace is the expected one (the earlier in the list
/// when both have the same dtype), and the envelope is used only where it applies: a float32 trace against
/// a float64 one, the envelope being neither of them.
/// </summary>
public static class PairwiseMatrix
{
    /// <summary>Compares every unordered pair of <paramref name="traces"/>.</summary>
    /// <param name="traces">Traces of one scenario, one per backend.</param>
    /// <param name="layout">The model and optimizer they ran.</param>
    /// <param name="policy">Tolerances.</param>
    /// <param name="envelope">The float32 reference's trace, or null.</param>
    public static PairwiseResult Compare(IReadOnlyList<ITrace> traces, TraceLayout layout, TolerancePolicy policy, ITrace? envelope = null)
    {
        ArgumentNullException.ThrowIfNull(traces);
        var cells = new List<PairwiseCell>();
        for (int i = 0; i < traces.Count; i++)
        {
            for (int j = i + 1; j < traces.Count; j++)
            {
                var (expected, actual) = IsFloat64(traces[j]) && !IsFloat64(traces[i]) ? (traces[j], traces[i]) : (traces[i], traces[j]);
                var result = TraceComparer.Compare(expected, actual, layout, policy, envelope);
                cells.Add(new PairwiseCell(result.Expected, result.Actual, result.Verdict, result.Message, result.FirstDivergence,
                    result.TensorsCompared, result.TensorsFailed));
            }
        }
        return new PairwiseResult(traces.Select(t => t.Header.Backend).ToList(), cells);
    }

    private static bool IsFloat64(ITrace trace) => DTypes.TryParse(trace.Header.DType) == DType.Float64;
}
