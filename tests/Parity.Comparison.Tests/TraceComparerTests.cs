using Parity.Backends;
using Parity.Models;
using Parity.Tensors;
using Parity.Tracing;
using static Parity.Comparison.Tests.SyntheticTraces;

namespace Parity.Comparison.Tests;

public class TraceComparerTests
{
    private string _root = "";
    private ModelGraph _graph = null!;

    [SetUp]
    public void SetUp()
    {
        _root = Path.Combine(Path.GetTempPath(), "parity-comparison-" + Guid.NewGuid().ToString("N"));
        _graph = Graph(BatchNormSpec);
    }

    [TearDown]
    public void TearDown()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private TraceReader Trace(string name, DType dtype, Options? options = null) => Write(Path.Combine(_root, name), _graph, name, dtype, options);

    private ComparisonResult Compare(Options actual, TraceReader? envelope = null, IReadOnlyList<ConventionMismatch>? declared = null) =>
        TraceComparer.Compare(Trace("reference", DType.Float64), Trace("candidate", DType.Float32, actual), Layout(_graph), TolerancePolicy.Default, envelope, declared);

    private static TensorKey Key(TensorKind kind, string site = "") => new(kind, site);

    [Test]
    public void Float32_rounding_of_the_same_values_agrees()
    {
        var result = Compare(new Options());
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree), () => string.Join("\n", result.Checks.Where(c => c.CountsAsFailure)));
        Assert.That(result.FirstDivergence, Is.Null);
        Assert.That(result.StepsCompared, Is.EqualTo(6));
        Assert.That(result.TensorsFailed, Is.Zero);
        Assert.That(result.TensorsCompared, Is.EqualTo(result.Checks.Count));
        Assert.That((result.Expected, result.Actual), Is.EqualTo(("reference", "candidate")));
        Assert.That(result.Policy, Is.Not.Null);
    }

    [Test]
    public void Checks_follow_comparison_order_within_a_step()
    {
        var result = Compare(new Options { Steps = 1 });
        var step1 = result.Checks.Where(c => c.Step == 1 && c.Phase == RecordPhase.Train).Select(c => c.Key.ToString()).ToList();
        Assert.That(step1.Take(8), Is.EqualTo(new[]
        {
            "forward:l1", "batchMean:bn1", "batchVariance:bn1", "forward:bn1", "forward:relu", "forward:l2", "loss", "trainAccuracy",
        }));
        Assert.That(step1.Skip(8).Take(4), Is.EqualTo(new[] { "outputGradient:l2", "outputGradient:relu", "outputGradient:bn1", "outputGradient:l1" }));
        Assert.That(step1.Last(), Is.EqualTo("parameter:l2.bias"));
        var phases = result.Checks.Select(c => c.Phase).ToList();
        Assert.That(phases.First(), Is.EqualTo(RecordPhase.Initial));
        Assert.That(phases.Last(), Is.EqualTo(RecordPhase.Eval));
    }

    [Test]
    public void A_perturbed_running_variance_is_the_origin_and_later_eval_outputs_inherit_it()
    {
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                if (at.Step < 3) return;
                if (at.Key == Key(TensorKind.RunningVariance, "bn1")) v[2] *= 1.001;
                // What eval mode would compute from it: the batchnorm output and everything after it.
                if (at.Phase == RecordPhase.Eval && at.Key.Site is "bn1" or "relu" or "l2") v[0] += 0.1;
                if (at.Key.Kind == TensorKind.EvalLoss) v[0] += 0.1;
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        var first = result.FirstDivergence!;
        Assert.That((first.Step, first.Origin.Phase, first.Key), Is.EqualTo((3, RecordPhase.Train, Key(TensorKind.RunningVariance, "bn1"))));
        Assert.That(first.IsOrigin, Is.True);
        Assert.That(first.UpstreamPassed, Is.EquivalentTo(new[] { Key(TensorKind.BatchVariance, "bn1"), Key(TensorKind.RunningVariance, "bn1") }));
        Assert.That(first.UpstreamUnknown, Is.Empty);
        Assert.That(first.Origin.Metrics.MaxRel, Is.EqualTo(1e-3).Within(1e-6));

        var evalBn = result.Checks.Single(c => c.Step == 3 && c.Phase == RecordPhase.Eval && c.Key == Key(TensorKind.EvalOutput, "bn1"));
        Assert.That((evalBn.Passed, evalBn.IsOrigin), Is.EqualTo((false, (bool?)false)));
        var evalLoss = result.Checks.Single(c => c.Step == 5 && c.Key == Key(TensorKind.EvalLoss));
        Assert.That((evalLoss.Passed, evalLoss.IsOrigin), Is.EqualTo((false, (bool?)false)));
        // Later steps' running variance failures are inherited from the step before.
        var later = result.Checks.Single(c => c.Step == 4 && c.Key == Key(TensorKind.RunningVariance, "bn1") && c.Phase == RecordPhase.Train);
        Assert.That(later.IsOrigin, Is.False);
        Assert.That(result.Checks.Where(c => c.Step < 3).All(c => c.Passed), Is.True);
    }

    [Test]
    public void A_perturbed_forward_output_is_the_origin_and_the_loss_inherits_it()
    {
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                if (at.Step != 2 || at.Phase != RecordPhase.Train) return;
                if (at.Key.Kind == TensorKind.Forward && at.Key.Site is "relu" or "l2") v[5] += 0.5;
                if (at.Key.Kind == TensorKind.Loss) v[0] += 0.05;
            },
        });
        var first = result.FirstDivergence!;
        Assert.That((first.Step, first.Key, first.IsOrigin), Is.EqualTo((2, Key(TensorKind.Forward, "relu"), true)));
        Assert.That(first.UpstreamPassed, Does.Contain(Key(TensorKind.Forward, "bn1")));
        var loss = result.Checks.Single(c => c.Step == 2 && c.Key == Key(TensorKind.Loss));
        Assert.That((loss.Passed, loss.IsOrigin), Is.EqualTo((false, (bool?)false)));
        var l2 = result.Checks.Single(c => c.Step == 2 && c.Phase == RecordPhase.Train && c.Key == Key(TensorKind.Forward, "l2"));
        Assert.That(l2.IsOrigin, Is.False);
        Assert.That(result.TensorsFailed, Is.EqualTo(3));
    }

    [Test]
    public void A_drifting_bias_before_batchnorm_is_not_identifiable_and_does_not_fail()
    {
        // Adam turns the bias's noise gradient into full steps: the bias, its gradient, the batch mean and the
        // running mean differ, and the linear output shifts by a per-column constant. Eval outputs after the
        // running mean differ too. Everything batchnorm normalizes agrees.
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                double shift(int column) => 0.05 * (column + 1) * at.Step;
                switch (at.Key)
                {
                    case { Kind: TensorKind.Parameter or TensorKind.ParameterGradient, Site: "l1.bias" } when at.Step > 0:
                    case { Kind: TensorKind.BatchMean, Site: "bn1" }:
                    case { Kind: TensorKind.RunningMean, Site: "bn1" } when at.Step > 0:
                        for (int i = 0; i < v.Length; i++) v[i] += shift(i);
                        break;
                    case { Kind: TensorKind.Forward or TensorKind.EvalOutput, Site: "l1" }:
                        for (int i = 0; i < v.Length; i++) v[i] += shift(i % 6);
                        break;
                    case { Kind: TensorKind.EvalOutput, Site: "bn1" or "relu" }:
                    case { Kind: TensorKind.EvalLoss or TensorKind.EvalAccuracy }:
                        v[0] += 0.1;
                        break;
                    case { Kind: TensorKind.EvalOutput, Site: "l2" }:
                        v[0] += 1e-4; // within its own tolerance, yet the eval loss after it fails
                        break;
                }
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree), () => string.Join("\n", result.Checks.Where(c => c.CountsAsFailure)));
        Assert.That(result.NotIdentifiable, Is.SupersetOf(new[]
        {
            "parameterGradient:l1.bias", "parameter:l1.bias", "batchMean:bn1", "runningMean:bn1", "evalOutput:bn1", "evalOutput:relu", "evalLoss", "evalAccuracy",
        }));
        var centered = result.Checks.Where(c => c.Key == Key(TensorKind.Forward, "l1")).ToList();
        Assert.That(centered, Has.All.Matches<TensorCheck>(c => c.Centered && c.Passed && c.Status == CheckStatus.Checked));
        var evalBn = result.Checks.First(c => c.Key == Key(TensorKind.EvalOutput, "bn1") && c.Step == 2);
        Assert.That((evalBn.Status, evalBn.Passed), Is.EqualTo((CheckStatus.NotIdentifiable, false)));
        Assert.That(evalBn.Note, Does.Contain("runningMean:bn1"));
        var evalL2 = result.Checks.First(c => c.Key == Key(TensorKind.EvalOutput, "l2") && c.Step == 2);
        Assert.That((evalL2.Status, evalL2.Passed, evalL2.ThroughNotIdentifiable), Is.EqualTo((CheckStatus.Checked, true, true)));
        var evalLoss = result.Checks.First(c => c.Key == Key(TensorKind.EvalLoss) && c.Step == 2);
        Assert.That((evalLoss.Status, evalLoss.Passed), Is.EqualTo((CheckStatus.NotIdentifiable, false)));
        Assert.That(evalLoss.Note, Does.Contain("evalOutput:l2"));
        Assert.That(result.Checks.Single(c => c.Step == 3 && c.Key == Key(TensorKind.Parameter, "l1.bias")).Passed, Is.False);
    }

    [Test]
    public void A_real_change_in_the_linear_output_before_batchnorm_still_fails_when_centered()
    {
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                if (at.Step == 4 && at.Phase == RecordPhase.Train && at.Key == Key(TensorKind.Forward, "l1")) v[7] += 0.2;
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That((result.FirstDivergence!.Step, result.FirstDivergence.Key), Is.EqualTo((4, Key(TensorKind.Forward, "l1"))));
        Assert.That(result.FirstDivergence.Origin.Centered, Is.True);
        Assert.That(result.FirstDivergence.UpstreamPassed, Is.EquivalentTo(new[] { Key(TensorKind.Parameter, "l1.weight") }));
    }

    [Test]
    public void An_eval_failure_with_an_identifiable_failing_input_still_counts()
    {
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                if (at.Step >= 2 && at.Key == Key(TensorKind.RunningMean, "bn1")) v[0] += 0.3; // not identifiable
                if (at.Step >= 2 && at.Key == Key(TensorKind.RunningVariance, "bn1")) v[0] *= 1.01; // identifiable
                if (at.Step >= 2 && at.Key == Key(TensorKind.EvalOutput, "bn1")) v[0] += 0.3;
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(result.FirstDivergence!.Key, Is.EqualTo(Key(TensorKind.RunningVariance, "bn1")));
        var evalBn = result.Checks.First(c => c.Key == Key(TensorKind.EvalOutput, "bn1") && c.Step == 2);
        Assert.That((evalBn.Status, evalBn.IsOrigin), Is.EqualTo((CheckStatus.Checked, (bool?)false)));
    }

    [Test]
    public void A_failed_actual_trace_gives_error_and_keeps_what_was_compared()
    {
        var result = Compare(new Options
        {
            FailAfter = 2,
            Alter = (at, v) =>
            {
                if (at.Step == 1 && at.Key == Key(TensorKind.Parameter, "l2.weight")) v[0] += 1;
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Error));
        Assert.That(result.Message, Is.EqualTo("at step 3: BackendException: worker crashed"));
        Assert.That(result.StepsCompared, Is.EqualTo(2));
        Assert.That(result.Checks.Max(c => c.Step), Is.EqualTo(2));
        Assert.That(result.Checks.Any(c => c.Status == CheckStatus.Missing), Is.False);
        Assert.That(result.FirstDivergence!.Key, Is.EqualTo(Key(TensorKind.Parameter, "l2.weight")));
    }

    [Test]
    public void A_failed_expected_trace_gives_error_naming_it()
    {
        var expected = Trace("reference", DType.Float64, new Options { FailAfter = 1, FailMessage = "at step 2: out of memory" });
        var result = TraceComparer.Compare(expected, Trace("candidate", DType.Float32), Layout(_graph), TolerancePolicy.Default);
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Error));
        Assert.That(result.Message, Does.Contain("expected trace (reference) failed: at step 2: out of memory"));
        Assert.That(result.StepsCompared, Is.EqualTo(1));
    }

    [Test]
    public void A_tensor_missing_from_the_actual_trace_is_a_failure()
    {
        var result = Compare(new Options { Omit = at => at.Step == 2 && at.Key == Key(TensorKind.ParameterGradient, "l2.weight") });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        var missing = result.Checks.Single(c => c.Status == CheckStatus.Missing);
        Assert.That((missing.Step, missing.Key, missing.Rule), Is.EqualTo((2, Key(TensorKind.ParameterGradient, "l2.weight"), JudgementRule.Missing)));
        Assert.That(missing.Note, Does.Contain("absent from the actual trace"));
        Assert.That(result.FirstDivergence!.Origin, Is.EqualTo(missing));
        Assert.That(result.TensorsFailed, Is.EqualTo(1));
    }

    [Test]
    public void A_missing_eval_record_is_a_failure_for_each_of_its_tensors()
    {
        var result = Compare(new Options { EvalEvery = 2 });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(result.Checks.Where(c => c.Status == CheckStatus.Missing).Select(c => c.Step).Distinct(), Is.EqualTo(new[] { 1, 3, 5 }));
        Assert.That(result.Checks.First(c => c.Status == CheckStatus.Missing).Note, Does.Contain("no eval record for step 1"));
    }

    [Test]
    public void A_step_one_trace_did_not_capture_is_not_missing_and_upstream_there_is_unknown()
    {
        var result = Compare(new Options
        {
            Captured = step => step != 3,
            Alter = (at, v) =>
            {
                if (at.Step == 4 && at.Key == Key(TensorKind.Parameter, "l2.bias")) v[1] += 0.1;
            },
        });
        Assert.That(result.Checks.Any(c => c.Status == CheckStatus.Missing), Is.False);
        Assert.That(result.Checks.Count(c => c.Step == 3 && c.Phase == RecordPhase.Train), Is.EqualTo(2), "loss and accuracy only");
        var first = result.FirstDivergence!;
        Assert.That((first.Step, first.Key, first.IsOrigin), Is.EqualTo((4, Key(TensorKind.Parameter, "l2.bias"), false)));
        Assert.That(first.UpstreamUnknown, Is.EqualTo(new[] { Key(TensorKind.Parameter, "l2.bias") }));
        Assert.That(first.UpstreamPassed, Is.EqualTo(new[] { Key(TensorKind.ParameterGradient, "l2.bias") }));
    }

    [Test]
    public void Extra_kinds_the_expected_trace_did_not_ask_for_are_ignored()
    {
        var expected = Trace("reference", DType.Float64, new Options { Omit = at => at.Key.Kind == TensorKind.OutputGradient });
        var result = TraceComparer.Compare(expected, Trace("candidate", DType.Float32), Layout(_graph), TolerancePolicy.Default);
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Agree));
        Assert.That(result.Checks.Any(c => c.Key.Kind == TensorKind.OutputGradient), Is.False);
    }

    [Test]
    public void A_declared_mismatch_explains_the_failures_it_names_but_the_verdict_stays_diverge()
    {
        var mismatch = new ConventionMismatch("$.model.layers[1].runningVariance", "unbiased", "biased", ["runningVariance"]);
        var result = Compare(new Options
        {
            Mismatches = [mismatch],
            Alter = (at, v) =>
            {
                if (at.Step >= 1 && at.Key == Key(TensorKind.RunningVariance, "bn1")) v[0] *= 1.05;
            },
        });
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(result.FirstDivergence!.Origin.Status, Is.EqualTo(CheckStatus.ExplainedByMismatch));
        Assert.That(result.FirstDivergence.ExplainedBy, Is.EqualTo(new[] { "$.model.layers[1].runningVariance" }));
        Assert.That(result.Mismatches, Has.Count.EqualTo(1));

        var undeclared = Compare(new Options { Alter = (at, v) => { if (at.Key == Key(TensorKind.RunningVariance, "bn1") && at.Step >= 1) v[0] *= 1.05; } }, declared: []);
        Assert.That(undeclared.FirstDivergence!.Origin.Status, Is.EqualTo(CheckStatus.Checked));
        Assert.That(undeclared.FirstDivergence.ExplainedBy, Is.Empty);
    }

    [Test]
    public void A_shape_mismatch_fails_that_tensor()
    {
        var expected = Trace("reference", DType.Float64);
        string dir = Path.Combine(_root, "transposed");
        using (var writer = TraceWriter.Create(dir, new TraceHeader { Backend = "transposed", DType = "float32", Scenario = "s", SpecHash = "h", Status = RunStatus.Completed }))
        {
            var initial = new StepRecord(0, RecordPhase.Initial);
            foreach (var entry in expected.Records().First().Entries)
                initial.Add(entry.Key.Kind, entry.Key.Site, entry.Key.Site == "l1.weight" ? entry.Value.Transpose2D() : entry.Value.As(DType.Float32));
            writer.Write(initial);
            writer.UpdateHeader(h => h);
        }
        var result = TraceComparer.Compare(expected, TraceReader.Open(dir), Layout(_graph), TolerancePolicy.Default);
        var check = result.Checks.Single(c => c.Step == 0 && c.Key == Key(TensorKind.Parameter, "l1.weight"));
        Assert.That((check.Metrics.ShapeMismatch, check.Passed, check.Score), Is.EqualTo((true, false, double.PositiveInfinity)));
        Assert.That(result.FirstDivergence!.IsOrigin, Is.True);
        // The shorter trace completed, so every later record of the expected trace is missing from it.
        Assert.That(result.Checks.Where(c => c.Step > 0).Select(c => c.Status), Is.All.EqualTo(CheckStatus.Missing));
    }

    [Test]
    public void Float32_noise_within_the_envelope_passes_and_a_jump_beyond_it_fails()
    {
        // Envelope: the float32 reference's own error, growing with the step. Candidate: twice that error
        // (another float32 implementation) passes; ten times it from step 4 on fails there.
        static Action<TensorAt, double[]> Noise(double scale, int jumpStep = int.MaxValue) => (at, v) =>
        {
            // An accuracy counts samples: rounding does not blur it (it changes only where an argmax flips).
            if (at.Key.Kind is TensorKind.TrainAccuracy or TensorKind.EvalAccuracy) return;
            double size = 1e-5 * (1 + at.Step) * (at.Step >= jumpStep ? 10 : 1) * scale;
            for (int i = 0; i < v.Length; i++) v[i] += size * Math.Cos(i * 1.7 + at.Step);
        };
        var envelope = Trace("reference-f32", DType.Float32, new Options { Alter = Noise(1) });
        var twice = Compare(new Options { Alter = Noise(2) }, envelope);
        Assert.That(twice.Verdict, Is.EqualTo(Verdict.Agree), () => string.Join("\n", twice.Checks.Where(c => c.CountsAsFailure)));
        Assert.That(twice.Envelope, Is.EqualTo("reference-f32"));
        var forward = twice.Checks.First(c => c.Step == 2 && c.Key == Key(TensorKind.Forward, "relu"));
        Assert.That(forward.Rule, Is.EqualTo(JudgementRule.Envelope));
        Assert.That(forward.Score, Is.InRange(0.4, 0.8));

        var jump = Compare(new Options { Alter = Noise(2, jumpStep: 4) }, envelope);
        Assert.That(jump.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(jump.FirstDivergence!.Step, Is.EqualTo(4));
        Assert.That(jump.FirstDivergence.Origin.Rule, Is.EqualTo(JudgementRule.Envelope));
    }

    [Test]
    public void The_envelope_uses_the_worst_error_seen_so_far()
    {
        // The envelope's error dips to zero at step 3; the candidate's steady error is still within bounds.
        var envelope = Trace("reference-f32", DType.Float32, new Options
        {
            Alter = (at, v) => { if (at.Step != 3) for (int i = 0; i < v.Length; i++) v[i] += 1e-4 * Math.Cos(i); },
        });
        var result = Compare(new Options { Alter = (at, v) => { for (int i = 0; i < v.Length; i++) v[i] += 1e-4 * Math.Sin(i); } }, envelope);
        var dip = result.Checks.Single(c => c.Step == 3 && c.Phase == RecordPhase.Train && c.Key == Key(TensorKind.Forward, "l2"));
        Assert.That(dip.Passed, Is.True);
        Assert.That(dip.EnvelopeError, Is.GreaterThan(0));
    }

    [Test]
    public void A_trace_is_never_its_own_envelope()
    {
        var candidate = Trace("candidate", DType.Float32, new Options { Alter = (at, v) => v[0] += 0.5 });
        var result = TraceComparer.Compare(Trace("reference", DType.Float64), candidate, Layout(_graph), TolerancePolicy.Default, envelope: candidate);
        Assert.That(result.Envelope, Is.Null);
        Assert.That(result.Verdict, Is.EqualTo(Verdict.Diverge));
        Assert.That(result.Checks.All(c => c.Rule != JudgementRule.Envelope), Is.True);
    }

    [Test]
    public void Non_finite_values_fail_where_they_first_appear()
    {
        var result = Compare(new Options
        {
            Alter = (at, v) =>
            {
                if (at.Step >= 5 && at.Phase == RecordPhase.Train && at.Key.Kind is TensorKind.Forward or TensorKind.Loss && at.Key.Site != "l1") v[0] = double.NaN;
            },
        });
        var first = result.FirstDivergence!;
        Assert.That((first.Step, first.Key, first.IsOrigin), Is.EqualTo((5, Key(TensorKind.Forward, "bn1"), true)));
        Assert.That(first.Origin.Metrics.NonFiniteMismatched, Is.EqualTo(1));
    }
}
