using Parity.Backends;
using Parity.Initialization;
using Parity.Randomness;
using Parity.Specs;
using Parity.Specs.Tests;
using Parity.Tensors;
using Parity.Tests;
using Parity.Tracing;

namespace Parity.Planning.Tests;

public sealed class PlanTests
{
    private static Plan Build(string fixture = "synthetic-mlp-bn.json") => Planner.Build(SpecLoader.LoadFile(Repository.Fixture(fixture)));

    private static byte[] Bytes(Tensor t) => t.ToFloats().SelectMany(BitConverter.GetBytes).ToArray();

    [Test]
    public void Two_plans_of_one_spec_give_every_step_the_same_bytes()
    {
        // Each backend builds its batches from its own copy of the plan; they must be the same bytes.
        Plan a = Build(), b = Build();
        Assert.That(a.TotalSteps, Is.EqualTo(50));
        for (int step = 1; step <= a.TotalSteps; step++)
        {
            var (x, y) = (a.BatchFor(step), b.BatchFor(step));
            Assert.That(Bytes(x.Inputs), Is.EqualTo(Bytes(y.Inputs)), $"step {step}");
            Assert.That(x.Labels, Is.EqualTo(y.Labels));
        }
        Assert.That(Bytes(a.EvalBatch().Inputs), Is.EqualTo(Bytes(b.EvalBatch().Inputs)));
    }

    [Test]
    public void Batch_inputs_are_float32_values_so_a_float64_backend_widens_them_exactly()
    {
        var batch = Build().BatchFor(3);
        Assert.That(batch.Inputs.DType, Is.EqualTo(DType.Float32));
        Assert.That(batch.Inputs.Shape, Is.EqualTo(new[] { 64, 20 }));
        Assert.That(batch.Inputs.Data.All(v => (double)(float)v == v), Is.True);
    }

    [Test]
    public void Epoch_e_takes_consecutive_batches_of_permutation_e_of_the_shuffle_seed()
    {
        var plan = Build();
        Assert.That(plan.StepsPerEpoch, Is.EqualTo(10), "640 samples in batches of 64");
        for (int epoch = 0; epoch < 2; epoch++)
        {
            int[] order = ParityRandom.Derive(plan.Spec.Data.ShuffleSeed, $"shuffle/epoch{epoch}").Permutation(plan.Train.Count);
            for (int within = 0; within < plan.StepsPerEpoch; within++)
            {
                var expected = plan.Train.Gather(order.AsSpan(within * 64, 64));
                var actual = plan.BatchFor(epoch * plan.StepsPerEpoch + within + 1);
                Assert.That(actual.Labels, Is.EqualTo(expected.Labels));
                Assert.That(actual.Inputs.Data, Is.EqualTo(expected.Inputs.Data));
            }
        }
    }

    [Test]
    public void Every_epoch_reshuffles_and_sees_each_sample_once()
    {
        var plan = Build();
        string Row(Tensor x, int r) => string.Join(",", x.Data.Skip(r * x.Shape[1]).Take(x.Shape[1]));
        var epochs = new List<List<string>>();
        for (int epoch = 0; epoch < 3; epoch++)
        {
            var rows = new List<string>();
            for (int s = 1; s <= plan.StepsPerEpoch; s++)
            {
                var x = plan.BatchFor(epoch * plan.StepsPerEpoch + s).Inputs;
                for (int r = 0; r < x.Shape[0]; r++) rows.Add(Row(x, r));
            }
            Assert.That(rows.Distinct().Count(), Is.EqualTo(640), $"epoch {epoch} repeats a sample");
            epochs.Add(rows);
        }
        Assert.That(epochs[1], Is.Not.EqualTo(epochs[0]));
        Assert.That(epochs[2], Is.Not.EqualTo(epochs[1]));
        Assert.That(epochs[1], Is.EquivalentTo(epochs[0]), "the same samples in another order");
    }

    [Test]
    public void Without_shuffle_batches_follow_the_data_order_and_the_last_partial_batch_is_dropped()
    {
        var plan = Build("seed002-no-identity.json");
        Assert.That(plan.Spec.Data.Shuffle, Is.False);
        Assert.That(plan.StepsPerEpoch, Is.EqualTo(9));
        var all = plan.Train.All();
        var step2 = plan.BatchFor(2);
        Assert.That(step2.Inputs.Data, Is.EqualTo(all.Inputs.Data.Skip(10 * 12).Take(10 * 12)));
        Assert.That(plan.BatchFor(11).Labels, Is.EqualTo(step2.Labels), "epoch 2 repeats epoch 1 in order");

        var partial = Planner.Build(SpecLoader.Parse(SpecLoaderTests.BaseSpec.Replace("\"samples\": 64", "\"samples\": 70")));
        Assert.That(partial.StepsPerEpoch, Is.EqualTo(4), "70 samples in batches of 16: 4 full batches, 6 samples dropped");
        Assert.That(partial.BatchFor(5).Size, Is.EqualTo(16));
    }

    [Test]
    public void Steps_outside_the_schedule_are_refused()
    {
        var plan = Build();
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.BatchFor(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => plan.BatchFor(plan.TotalSteps + 1));
        Assert.That(Planner.Build(plan.Spec, stepsOverride: 3).TotalSteps, Is.EqualTo(3));
    }

    [Test]
    public void The_initial_state_draws_each_parameter_from_its_own_stream_rounded_to_float32()
    {
        var plan = Build();
        var lin = (LinearSpec)plan.Spec.Model.Layer("l2");
        var expected = new double[lin.Out * lin.In];
        Initializers.Fill(lin.WeightInit, expected, lin.In, lin.Out, ParityRandom.Derive(plan.Spec.Init.Seed, "init/l2.weight"));
        var weight = plan.InitialState.Find(TensorKind.Parameter, "l2.weight")!;
        Assert.That(weight.Shape, Is.EqualTo(new[] { 32, 32 }));
        Assert.That(weight.DType, Is.EqualTo(DType.Float32));
        Assert.That(weight.Data, Is.EqualTo(expected.Select(v => (double)(float)v)));

        Assert.That(plan.InitialState.Find(TensorKind.Parameter, "bn1.gamma")!.Data, Is.All.EqualTo(1));
        Assert.That(plan.InitialState.Find(TensorKind.Parameter, "bn1.beta")!.Data, Is.All.EqualTo(0));
        Assert.That(plan.InitialState.Find(TensorKind.RunningMean, "bn2")!.Data, Is.All.EqualTo(0));
        Assert.That(plan.InitialState.Find(TensorKind.RunningVariance, "bn2")!.Data, Is.All.EqualTo(1));
        Assert.That(plan.InitialState.Phase, Is.EqualTo(RecordPhase.Initial));
        Assert.That(plan.InitialState.Entries.Count(e => e.Key.Kind == TensorKind.Parameter), Is.EqualTo(plan.Graph.Parameters.Count));
    }

    [Test]
    public void A_bias_directly_followed_by_batchnorm_is_not_identifiable()
    {
        var graph = Build().Graph;
        Assert.That(graph.Parameters.Where(p => !p.Identifiable).Select(p => p.Name), Is.EquivalentTo(new[] { "l1.bias", "l2.bias" }));
        // The cs231n fixtures leave such biases out, so a gradient check can hold every tensor to its threshold.
        foreach (string fixture in new[] { "cs231n-bn.json", "cs231n-shared-bn.json", "cs231n-layernorm.json" })
            Assert.That(Build(fixture).Graph.Parameters.Where(p => !p.Identifiable), Is.Empty, fixture);
    }

    [Test]
    public void Capture_first_n_and_last_asks_for_full_records_only_on_those_steps()
    {
        var spec = SpecLoader.Parse(SpecLoaderTests.BaseSpec.Replace("\"training\": { \"steps\": 5 }",
            "\"training\": { \"steps\": 9 }, \"capture\": { \"steps\": { \"first\": 2, \"last\": true } }, \"evaluation\": { \"every\": 4 }"));
        var plan = Planner.Build(spec);
        Assert.That(Enumerable.Range(1, 9).Where(plan.IsCaptured), Is.EqualTo(new[] { 1, 2, 9 }));
        Assert.That(Enumerable.Range(1, 9).Where(plan.IsEvalStep), Is.EqualTo(new[] { 4, 8, 9 }));
        Assert.That(plan.CaptureFor(3), Is.SameAs(CaptureRequest.ScalarsOnly));
        Assert.That(plan.CaptureFor(9).Wants(TensorKind.OutputGradient), Is.True);
    }

    [TestCase("cs231n-bn.json", 20)]
    [TestCase("cs231n-layernorm.json", 20)]
    [TestCase("cs231n-shared-bn.json", 20)]
    [TestCase("seed002-identity.json", 180)]
    [TestCase("synthetic-layernorm-sgd.json", 50)]
    public void Synthetic_fixtures_plan_quickly(string fixture, int steps)
    {
        var plan = Build(fixture);
        Assert.That(plan.TotalSteps, Is.EqualTo(steps));
        Assert.That(plan.Graph.OutputWidth, Is.EqualTo(plan.Train.Classes));
    }
}
