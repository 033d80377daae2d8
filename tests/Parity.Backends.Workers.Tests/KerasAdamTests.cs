using Parity.Planning;
using Parity.Specs;
using Parity.Tensors;
using Parity.Tracing;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// TF.js's Adam as the keras worker reports it: its parameters and its moments m and v, bit for bit, are the float32 formula
/// of adam_optimizer.js (tfjs-core 4.22) applied to the worker's own gradients. That formula scales the new gradient by
/// 1 - beta rounded from float64 (0.1f, 0.001f) but divides by 1 - beta^t from a float32 running product (1 - 0.9f,
/// 1 - 0.999f: the latter 1.3e-5 away from 0.001f), so at step 1 its v_hat is 1.3e-5 and its step 6.4e-6 relative off the
/// canonical evaluation with the betas as written. That is the spec's betaPrecision "float32", which the keras worker declares
/// (with that value, so the step checks replay keras under it and judge its parameters and moments strictly). The test pins
/// the cause, and checks that the moments are read in the canonical layout (a kernel's slots transposed like the kernel) and
/// the canonical biased form.
/// </summary>
public class KerasAdamTests
{
    private const int Steps = 3;

    [Test]
    public void TFjs_Adam_is_the_float32_formula_of_adam_optimizer_js_bit_for_bit()
    {
        var backend = WorkerRegistry.BuiltIns().Single(b => b.Name == "keras").Factory();
        var description = backend.Describe();
        if (!description.Available) Assert.Ignore($"keras cannot run here: {description.Reason}");
        var plan = Planner.Build(SpecLoader.LoadFile(TestPaths.Fixture("synthetic-mlp-bn.json")), Steps);
        var records = new List<StepRecord>();
        using (var session = backend.Open(plan, new BackendOptions(DType.Float32)))
        {
            records.Add(session.ReadState(0));
            for (int step = 1; step <= Steps; step++) records.Add(session.Step(step, plan.BatchFor(step), CaptureRequest.Everything));
        }

        var adam = (AdamSpec)plan.Spec.Optimizer;
        Assert.That(Differing(records, plan, adam, tfjs: true), Is.Empty, "adam_optimizer.js's formula");
        // The canonical float32 evaluation gives other bits: the difference is real, not a rounding tie.
        Assert.That(Differing(records, plan, adam, tfjs: false), Is.Not.Empty);
    }

    /// <summary>The (step, parameter or slot) whose reported values differ from the replayed formula in any bit.</summary>
    private static List<string> Differing(List<StepRecord> records, Plan plan, AdamSpec adam, bool tfjs)
    {
        float beta1 = (float)adam.Beta1, beta2 = (float)adam.Beta2, lr = (float)adam.LearningRate, eps = (float)adam.Eps;
        // adam_optimizer.js: mul(gradient, 1 - this.beta1) with the JS number 1 - beta1 cast to a float32 scalar; the
        // correction sub(1, accBeta1) with accBeta1 = beta1^t kept as a float32 variable multiplied by beta1 each step.
        float scale1 = tfjs ? (float)(1 - adam.Beta1) : 1f - beta1, scale2 = tfjs ? (float)(1 - adam.Beta2) : 1f - beta2;
        var differing = new List<string>();
        foreach (var p in plan.Graph.Parameters)
        {
            var value = records[0].Find(TensorKind.Parameter, p.Name)!.Data.Select(d => (float)d).ToArray();
            var m = new float[value.Length];
            var v = new float[value.Length];
            float power1 = beta1, power2 = beta2;
            for (int step = 1; step <= Steps; step++)
            {
                var gradient = records[step].Find(TensorKind.ParameterGradient, p.Name)!.Data;
                float correction1 = tfjs ? 1f - power1 : 1f - MathF.Pow(beta1, step), correction2 = tfjs ? 1f - power2 : 1f - MathF.Pow(beta2, step);
                for (int i = 0; i < value.Length; i++)
                {
                    float g = (float)gradient[i];
                    m[i] = m[i] * beta1 + g * scale1;
                    v[i] = v[i] * beta2 + g * g * scale2;
                    value[i] = m[i] / correction1 / (MathF.Sqrt(v[i] / correction2) + eps) * -lr + value[i];
                }
                power1 *= beta1;
                power2 *= beta2;
                foreach (var (key, expected) in new[]
                {
                    (new TensorKey(TensorKind.Parameter, p.Name), value),
                    (new TensorKey(TensorKind.OptimizerSlot, TraceLayout.SlotSite(p.Name, "m")), m),
                    (new TensorKey(TensorKind.OptimizerSlot, TraceLayout.SlotSite(p.Name, "v")), v),
                })
                {
                    if (!records[step].Find(key.Kind, key.Site)!.Data.Select(d => (float)d).SequenceEqual(expected)) differing.Add($"{key}@{step}");
                }
            }
        }
        return differing;
    }
}
