namespace Parity.Comparison;

/// <summary>
/// An absolute and a relative tolerance in the sense of <c>torch.testing.assert_close</c>: an element
/// passes when <c>|actual - expected| &lt;= Atol + Rtol * |expected|</c>. Immutable.
/// </summary>
/// <param name="Atol">Absolute tolerance, at least 0.</param>
/// <param name="Rtol">Relative tolerance, at least 0.</param>
public sealed record Tolerance(double Atol, double Rtol)
{
    /// <summary>Absolute tolerance.</summary>
    public double Atol { get; } = Atol >= 0 && !double.IsNaN(Atol) ? Atol : throw new ArgumentOutOfRangeException(nameof(Atol), Atol, "atol must be a number >= 0");

    /// <summary>Relative tolerance.</summary>
    public double Rtol { get; } = Rtol >= 0 && !double.IsNaN(Rtol) ? Rtol : throw new ArgumentOutOfRangeException(nameof(Rtol), Rtol, "rtol must be a number >= 0");

    /// <summary>No difference allowed.</summary>
    public static Tolerance Exact { get; } = new(0, 0);

    /// <summary>The largest difference allowed for an element whose expected value is <paramref name="expected"/>.</summary>
    public double Allowed(double expected) => Atol + Rtol * Math.Abs(expected);

    /// <summary>Both tolerances multiplied by <paramref name="factor"/>.</summary>
    public Tolerance Scaled(double factor) => new(Atol * factor, Rtol * factor);

    /// <inheritdoc />
    public override string ToString() => $"atol={Atol:G3}, rtol={Rtol:G3}";
}
