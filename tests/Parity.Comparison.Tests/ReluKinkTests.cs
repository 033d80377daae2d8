using Parity.Models;
using Parity.Tensors;
using Parity.Tracing;
using static Parity.Comparison.Tests.SyntheticTraces;

namespace Parity.Comparison.Tests;

/// <summary>
/// An element of a ReLU's input within rounding of zero lands on opposite sides in two traces: the gradient element
/// behind the ReLU then differs by its whole size. That is float rounding at a kink, not a defect.
/// </summary>
public class ReluKinkTests
{
    private const int Element = 5;
    private static readonly TensorKey GradientBehindRelu = new(TensorKind.OutputGradient, "bn1");
    private string _root = "";
    private ModelGraph _graph = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "parity-kink-" + Guid.NewGuid().ToString("N"));
        _graph = Graph(BatchNormSpec);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    // Both traces hold forward:bn1[5] = sign * 1e-9 at step 2; the candidate's gradient there is 0 (its ReLU is closed).
    private ComparisonResult Compare(double referenceSign, double candidateSign)
    {
        Action<TensorAt, double[]> Kink(double sign, bool closedGate) => (at, v) =>
        {
            if (at.Step != 2 || at.Phase != RecordPhase.Train) return;
            if (at.Key == new TensorKey(TensorKind.Forward, "bn1")) v[Element] = sign * 1e-9;
            if (at.Key == GradientBehindRelu && closedGate) v[Element] = 0;
        };
        var reference = Write(Path.Combine(_root, "reference"), _graph, "reference", DType.Float64, new Options { Alter = Kink(referenceSign, referenceSign < 0) });
        var candidate = Write(Path.Combine(_root, "candidate"), _graph, "candidate", DType.Float32, new Options { Alter = Kink(candidateSign, true) });
        return TraceComparer.Compare(reference, candidate, Layout(_graph), TolerancePolicy.Default);
    }

    [Test]
    public void A_gradient_element_that_differs_because_the_relu_input_straddles_zero_is_left_out_and_counted()
    {
        var result = Compare(referenceSign: +1, candidateSign: -1);

        var check = result.Checks.Single(c => c.Step == 2 && c.Phase == RecordPhase.Train && c.Key == GradientBehindRelu);
        Assert.That(check.Passed, Is.True, check.Note);
        Assert.That(check.KinkFlips, Is.EqualTo(1));
        Assert.That(check.Note, Does.Contain("ReLU kink"));
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree));
    }

    [Test]
    public void A_later_difference_computed_from_a_flip_is_kink_inherited_and_the_same_difference_without_one_counts()
    {
        Action<TensorAt, double[]> LaterDifference(bool flip) => (at, v) =>
        {
            if (at.Phase != RecordPhase.Train) return;
            if (at.Step == 2 && at.Key == new TensorKey(TensorKind.Forward, "bn1")) v[Element] = flip ? -1e-9 : 1e-9;
            if (flip && at.Step == 2 && at.Key == GradientBehindRelu) v[Element] = 0;
            if (at.Step == 3 && at.Key == new TensorKey(TensorKind.Forward, "l2")) v[1] += 0.5;
        };
        Action<TensorAt, double[]> ReferenceKink = (at, v) =>
        {
            if (at.Step == 2 && at.Phase == RecordPhase.Train && at.Key == new TensorKey(TensorKind.Forward, "bn1")) v[Element] = 1e-9;
        };
        var reference = Write(Path.Combine(_root, "reference"), _graph, "reference", DType.Float64, new Options { Alter = ReferenceKink });
        var afterFlip = TraceComparer.Compare(reference, Write(Path.Combine(_root, "flipped"), _graph, "flipped", DType.Float32,
            new Options { Alter = LaterDifference(flip: true) }), Layout(_graph), TolerancePolicy.Default);
        var noFlip = TraceComparer.Compare(reference, Write(Path.Combine(_root, "plain"), _graph, "plain", DType.Float32,
            new Options { Alter = LaterDifference(flip: false) }), Layout(_graph), TolerancePolicy.Default);

        var later = afterFlip.Checks.Single(c => c.Step == 3 && c.Phase == RecordPhase.Train && c.Key == new TensorKey(TensorKind.Forward, "l2"));
        Assert.That(later.Status, Is.EqualTo(CheckStatus.KinkInherited), later.Note);
        Assert.That(afterFlip.Verdict, Is.EqualTo(Verdict.Agree));
        Assert.That(afterFlip.Message, Does.Contain("ReLU kink"));
        Assert.That(noFlip.FirstDivergence!.Key, Is.EqualTo(new TensorKey(TensorKind.Forward, "l2")));
        Assert.That((noFlip.FirstDivergence.Step, noFlip.FirstDivergence.IsOrigin), Is.EqualTo((3, true)));
    }

    [Test]
    public void The_same_gradient_difference_without_a_sign_change_still_fails()
    {
        var result = Compare(referenceSign: +1, candidateSign: +1);

        var check = result.Checks.Single(c => c.Step == 2 && c.Phase == RecordPhase.Train && c.Key == GradientBehindRelu);
        Assert.That(check.Passed, Is.False);
        Assert.That(check.KinkFlips, Is.Zero);
        Assert.That(result.FirstDivergence!.Key, Is.EqualTo(GradientBehindRelu));
    }
}

public class LossConsistencyTests
{
    [Test]
    public void A_loss_that_is_wrong_while_its_logits_agree_still_fails_as_the_origin()
    {
        string root = Path.Combine(Path.GetTempPath(), "parity-loss-" + Guid.NewGuid().ToString("N"));
        try
        {
            var graph = Graph(BatchNormSpec);
            var reference = Write(Path.Combine(root, "reference"), graph, "reference", DType.Float64);
            var candidate = Write(Path.Combine(root, "candidate"), graph, "candidate", DType.Float32, new Options
            {
                Alter = (at, v) =>
                {
                    if (at.Step == 3 && at.Phase == RecordPhase.Train && at.Key.Kind == TensorKind.Loss) v[0] *= 1.001;
                },
            });

            var result = TraceComparer.Compare(reference, candidate, Layout(graph), TolerancePolicy.Default);

            Assert.That(result.FirstDivergence!.Key, Is.EqualTo(new TensorKey(TensorKind.Loss, "")));
            Assert.That((result.FirstDivergence.Step, result.FirstDivergence.IsOrigin), Is.EqualTo((3, true)));
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
