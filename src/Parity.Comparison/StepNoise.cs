namespace Parity.Comparison;

/// <summary>
/// A step check's estimate of one tensor's rounding noise: the worst envelope error over this step's draws and the
/// nearest earlier checked steps', spanning at least <see cref="TolerancePolicy.StepNoiseDraws"/> draws. Each draw is
/// one float32 replay of one step from a given state, so nothing accumulates across steps; the window only steadies
/// the estimate of the tensor's rounding scale, which a few draws over a small tensor (a loss, a 5-element bias
/// gradient) underestimate by chance. An earlier step's error counts relative to the RMS of its expected tensor and is
/// scaled to this step's (rounding is relative: an Adam second moment that triples over the first steps rounds three
/// times coarser). A tensor that fails against this estimate is judged again with more draws of its step
/// (<see cref="TolerancePolicy.ConfirmationDraws"/>).
/// </summary>
public sealed class StepNoise
{
    private readonly Queue<(double Worst, double Scale, int Draws)> _steps = new();

    /// <summary>The draws the window holds now.</summary>
    public int Draws { get; private set; }

    /// <summary>
    /// The noise this step is judged against: the worst of <paramref name="here"/> and the window's errors scaled to
    /// <paramref name="scale"/> (the RMS of this step's expected tensor); null when this step has no draw.
    /// </summary>
    public double? Estimate(double? here, double scale)
    {
        if (here is not double h) return null;
        foreach (var (worst, earlierScale, _) in _steps)
            h = Math.Max(h, Scalable(earlierScale) && Scalable(scale) ? worst / earlierScale * scale : worst);
        return h;
    }

    /// <summary>
    /// Adds a checked step's worst error over its <paramref name="draws"/> draws, with the RMS of its expected tensor,
    /// dropping the oldest steps the window no longer needs.
    /// </summary>
    public void Add(double worst, double scale, int draws)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(draws);
        _steps.Enqueue((worst, scale, draws));
        Draws += draws;
        while (_steps.Count > 1 && Draws - _steps.Peek().Draws >= TolerancePolicy.StepNoiseDraws) Draws -= _steps.Dequeue().Draws;
    }

    private static bool Scalable(double scale) => scale > 0 && double.IsFinite(scale);
}
