using Parity.Specs;

namespace Parity.Diagnostics.Detectors;

/// <summary>
/// <c>adagrad-initial-accumulator</c>: Adagrad's update 1 fits the accumulator starting at the other value, 0.1 (TF,
/// Keras, TF.js) against 0 (PyTorch, Chainer). A zero start makes update 1 about lr sign(g); a start at 0.1 makes it
/// lr g / sqrt(0.1 + g^2): it shows in the parameters after update 1.
/// </summary>
public sealed class AdagradInitialAccumulatorDetector : OptimizerStartDetector
{
    /// <inheritdoc />
    public override string Cause => CauseIds.AdagradInitialAccumulator;

    /// <inheritdoc />
    protected override string Setting => "initialAccumulator";

    /// <inheritdoc />
    protected override string SlotTitle => "Adagrad's accumulator";

    /// <inheritdoc />
    protected override string Hint =>
        "Set optimizer.initialAccumulator to the framework's initial_accumulator_value: 0.1 for TF, Keras and TF.js, 0 for PyTorch (its default) and Chainer (docs/conventions.md, Adagrad).";

    /// <inheritdoc />
    protected override double? SpecStart(OptimizerSpec spec) => (spec as AdagradSpec)?.InitialAccumulator;

    /// <inheritdoc />
    protected override OptimizerSpec? WithStart(OptimizerSpec spec, double start) =>
        // A zero start without eps divides by zero at update 1 (the loader refuses it): not a hypothesis to test.
        spec is AdagradSpec a && !(start == 0 && a.Eps == 0) ? a with { InitialAccumulator = start } : null;

    /// <inheritdoc />
    protected override double OtherStart(double specStart) => specStart == 0 ? 0.1 : 0;
}
