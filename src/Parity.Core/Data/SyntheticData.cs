using Parity.Randomness;
using Parity.Specs;

namespace Parity.Data;

/// <summary>Seeded synthetic data sets (docs/spec.md, "Data").</summary>
public static class SyntheticData
{
    /// <summary>Generates the set a <see cref="SyntheticSourceSpec"/> describes.</summary>
    public static DataSet Generate(SyntheticSourceSpec spec)
    {
        var rng = ParityRandom.Derive(spec.Seed, "synthetic/inputs");
        var x = new float[checked(spec.Samples * spec.Features)];
        for (int i = 0; i < x.Length; i++) x[i] = (float)rng.NextNormal();
        float[]? targets = spec.HasTargets ? new float[checked(spec.Samples * spec.Classes)] : null;
        var labels = spec.Generator switch
        {
            "teacher" or "regression" => TeacherLabels(x, spec, targets),
            "gaussian" => UniformLabels(spec),
            _ => throw new ArgumentException($"unknown synthetic generator '{spec.Generator}'"),
        };
        var set = new DataSet(x, labels, spec.Features, spec.Classes, Origin(spec));
        return targets is null ? set : set.WithTargets(targets, spec.Classes);
    }

    /// <summary>How the set is named in messages and reports, e.g. <c>synthetic:teacher(seed=1)</c>.</summary>
    public static string Origin(SyntheticSourceSpec spec) => $"synthetic:{spec.Generator}(seed={spec.Seed})";

    // Labels = argmax of a random teacher: features -> 2*features tanh -> classes. The teacher depends
    // only on TeacherSeed, so train and eval sets with different Seed share one labelling function. The regression
    // generator keeps the teacher's outputs (rounded to float32, like the inputs) as the targets.
    private static int[] TeacherLabels(float[] x, SyntheticSourceSpec spec, float[]? targets)
    {
        int f = spec.Features, h = 2 * spec.Features, k = spec.Classes;
        var rng = ParityRandom.Derive(spec.TeacherSeed, "synthetic/teacher");
        var w1 = new double[checked(h * f)];
        var w2 = new double[checked(k * h)];
        for (int i = 0; i < w1.Length; i++) w1[i] = rng.NextNormal() / Math.Sqrt(f);
        for (int i = 0; i < w2.Length; i++) w2[i] = rng.NextNormal() / Math.Sqrt(h);
        var labels = new int[spec.Samples];
        var hidden = new double[h];
        for (int s = 0; s < spec.Samples; s++)
        {
            for (int j = 0; j < h; j++)
            {
                double acc = 0;
                for (int i = 0; i < f; i++) acc += w1[j * f + i] * x[s * f + i];
                hidden[j] = Math.Tanh(acc);
            }
            int best = 0;
            double bestScore = double.NegativeInfinity;
            for (int c = 0; c < k; c++)
            {
                double acc = 0;
                for (int j = 0; j < h; j++) acc += w2[c * h + j] * hidden[j];
                if (targets is not null) targets[s * k + c] = (float)acc;
                if (acc > bestScore) (best, bestScore) = (c, acc);
            }
            labels[s] = best;
        }
        return labels;
    }

    private static int[] UniformLabels(SyntheticSourceSpec spec)
    {
        var rng = ParityRandom.Derive(spec.Seed, "synthetic/labels");
        var labels = new int[spec.Samples];
        for (int i = 0; i < labels.Length; i++) labels[i] = rng.NextInt(spec.Classes);
        return labels;
    }
}
