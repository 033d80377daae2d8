using Parity.Tracing;
using static Parity.Comparison.Tests.SyntheticTraces;

namespace Parity.Comparison.Tests;

public class TensorDependenciesTests
{
    private static readonly TensorDependencies Shared = new(Layout(Graph(SharedSpec)));

    private static TensorAt At(int step, RecordPhase phase, TensorKind kind, string site = "") => new(step, phase, new TensorKey(kind, site));

    private static IEnumerable<string> Upstream(TensorAt at) => Shared.Upstream(at).Select(u => u.ToString());

    [Test]
    public void A_shared_batchnorm_running_mean_depends_on_both_calls_and_its_previous_value()
    {
        Assert.That(Upstream(At(3, RecordPhase.Train, TensorKind.RunningMean, "bn")),
            Is.EquivalentTo(new[] { "batchMean:bn#1@train3", "batchMean:bn#2@train3", "runningMean:bn@train2" }));
        Assert.That(Upstream(At(1, RecordPhase.Train, TensorKind.RunningVariance, "bn")), Does.Contain("runningVariance:bn@initial0"));
    }

    [Test]
    public void A_shared_parameter_gradient_depends_on_every_call_of_its_instance()
    {
        Assert.That(Upstream(At(2, RecordPhase.Train, TensorKind.ParameterGradient, "bn.gamma")), Is.EquivalentTo(new[]
        {
            "outputGradient:bn#1@train2", "forward:l1@train2", "batchMean:bn#1@train2", "batchVariance:bn#1@train2",
            "outputGradient:bn#2@train2", "forward:l2@train2", "batchMean:bn#2@train2", "batchVariance:bn#2@train2",
        }));
    }

    [Test]
    public void Forward_of_a_batchnorm_call_reads_its_input_batch_statistics_and_the_previous_parameters()
    {
        Assert.That(Upstream(At(2, RecordPhase.Train, TensorKind.Forward, "bn#2")), Is.EquivalentTo(new[]
        {
            "forward:l2@train2", "parameter:bn.gamma@train1", "parameter:bn.beta@train1", "batchMean:bn#2@train2", "batchVariance:bn#2@train2",
        }));
    }

    [Test]
    public void A_centered_linear_output_does_not_depend_on_its_not_identifiable_bias()
    {
        Assert.That(Shared.IsCentered(new TensorKey(TensorKind.Forward, "l1")), Is.True);
        Assert.That(Shared.IsCentered(new TensorKey(TensorKind.Forward, "l3")), Is.False);
        Assert.That(Upstream(At(1, RecordPhase.Train, TensorKind.Forward, "l2")), Is.EquivalentTo(new[] { "forward:relu#1@train1", "parameter:l2.weight@initial0" }));
        Assert.That(Upstream(At(1, RecordPhase.Train, TensorKind.Forward, "l3")), Is.EquivalentTo(new[] { "forward:relu#2@train1", "parameter:l3.weight@initial0", "parameter:l3.bias@initial0" }));
    }

    [Test]
    public void Output_gradients_flow_back_through_what_the_next_call_used()
    {
        Assert.That(Upstream(At(1, RecordPhase.Train, TensorKind.OutputGradient, "l3")), Is.EquivalentTo(new[] { "forward:l3@train1" }));
        Assert.That(Upstream(At(1, RecordPhase.Train, TensorKind.OutputGradient, "relu#2")), Is.EquivalentTo(new[]
        {
            "outputGradient:l3@train1", "forward:relu#2@train1", "forward:l3@train1", "parameter:l3.weight@initial0", "parameter:l3.bias@initial0",
        }));
    }

    [Test]
    public void Eval_outputs_read_the_state_after_the_step()
    {
        Assert.That(Upstream(At(4, RecordPhase.Eval, TensorKind.EvalOutput, "bn#1")), Is.EquivalentTo(new[]
        {
            "evalOutput:l1@eval4", "parameter:bn.gamma@train4", "parameter:bn.beta@train4", "runningMean:bn@train4", "runningVariance:bn@train4",
        }));
        Assert.That(Upstream(At(4, RecordPhase.Eval, TensorKind.EvalLoss)), Is.EquivalentTo(new[] { "evalOutput:l3@eval4" }));
    }

    [Test]
    public void The_initial_state_has_no_upstream_and_not_identifiable_keys_follow_the_graph()
    {
        Assert.That(Shared.Upstream(At(0, RecordPhase.Initial, TensorKind.Parameter, "l1.weight")), Is.Empty);
        Assert.That(Shared.NotIdentifiable.Select(k => k.ToString()), Is.EquivalentTo(new[]
        {
            "parameterGradient:l1.bias", "parameter:l1.bias", "parameterGradient:l2.bias", "parameter:l2.bias", "batchMean:bn#1", "batchMean:bn#2", "runningMean:bn",
        }));
    }

    [Test]
    public void Keys_sort_into_comparison_order()
    {
        var keys = new[]
        {
            new TensorKey(TensorKind.Parameter, "l1.weight"), new TensorKey(TensorKind.OutputGradient, "l1"), new TensorKey(TensorKind.Loss, ""),
            new TensorKey(TensorKind.Forward, "bn#2"), new TensorKey(TensorKind.BatchVariance, "bn#2"), new TensorKey(TensorKind.OutputGradient, "l3"),
            new TensorKey(TensorKind.RunningMean, "bn"), new TensorKey(TensorKind.Forward, "l1"), new TensorKey(TensorKind.ParameterGradient, "l3.bias"),
        };
        Assert.That(Shared.InOrder(keys).Select(k => k.ToString()), Is.EqualTo(new[]
        {
            "forward:l1", "batchVariance:bn#2", "forward:bn#2", "loss", "outputGradient:l3", "outputGradient:l1", "parameterGradient:l3.bias", "runningMean:bn", "parameter:l1.weight",
        }));
    }
}
