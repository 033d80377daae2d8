using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Parity.Benchmarks;

/// <summary>
/// GFLOP/s of a benchmark whose OperationsPerInvoke is its floating-point operation count (a multiply-add counts
/// two): BenchmarkDotNet's mean is then nanoseconds per operation, and operations per nanosecond are GFLOP/s.
/// </summary>
public sealed class GigaflopsColumn : IColumn
{
    public string Id => nameof(GigaflopsColumn);

    public string ColumnName => "GFLOP/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => "Floating-point operations per second, 1e9 (a multiply-add is two)";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var statistics = summary[benchmarkCase]?.ResultStatistics;
        return statistics is null || statistics.Median <= 0 ? "NA" : (1 / statistics.Median).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
