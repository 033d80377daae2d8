using Parity.Specs;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>rmsprop-mean-square-init</c>: RMSprop's update 1 fits the mean square starting at the other value, 1 (TF1's
/// RMSPropOptimizer) against 0 (PyTorch, Keras, TF.js). With rho 0.9 a zero start makes update 1 about
/// 3.16 lr sign(g); a start at 1 makes it about lr g / sqrt(0.9): it shows in the parameters after update 1.
/// </summary>
public sealed class RmspropMeanSquareInitDetector : OptimizerStartDetector
{
    /// <inheritdoc />
    public override string Cause => CauseIds.RmspropMeanSquareInit;

    /// <inheritdoc />
    protected override string Setting => "meanSquareInit";

    /// <inheritdoc />
    protected override string SlotTitle => "RMSprop's mean square";

    /// <inheritdoc />
    protected override string Hint =>
        "Set optimizer.meanSquareInit to the framework's start: 1 for TF1's RMSPropOptimizer (its ms slot starts at ones), 0 for PyTorch, Keras and TF.js (docs/conventions.md, RMSprop).";

    /// <inheritdoc />
    protected override double? SpecStart(OptimizerSpec spec) => (spec as RmspropSpec)?.MeanSquareInit;

    /// <inheritdoc />
    protected override OptimizerSpec? WithStart(OptimizerSpec spec, double start) => ((RmspropSpec)spec) with { MeanSquareInit = start };

    /// <inheritdoc />
    protected override double OtherStart(double specStart) => specStart == 0 ? 1 : 0;
}
