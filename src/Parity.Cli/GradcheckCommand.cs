using System.Globalization;
using Parity.Backends.Reference;
using Parity.Planning;
using Parity.Specs;

namespace Parity.Cli;

/// <summary>
/// <c>parity gradcheck</c>: the reference backend's analytic gradients against central differences in float64,
/// printed as cs231n's relative error per tensor (seed 003 expects 1e-8 .. 1e-13 for correct code).
/// </summary>
internal static class GradcheckCommand
{
    public static int Execute(IEnumerable<string> specPaths, double threshold, int step, TextWriter w)
    {
        bool allPass = true;
        foreach (string path in specPaths)
        {
            var plan = Planner.Build(SpecLoader.LoadFile(path), Math.Max(step, 1));
            w.WriteLine($"{plan.Spec.Name}: gradient check on the batch of step {step} (float64, central differences)");
            foreach (var r in GradientCheck.Run(plan, step))
            {
                // A bias whose every call feeds batchnorm has a true gradient of zero: its relative error compares
                // rounding noise with rounding noise, so it is shown but kept out of the verdict.
                bool pass = r.RelativeError <= threshold || !r.Identifiable;
                allPass &= pass;
                string verdict = !r.Identifiable ? "not identifiable (gradient is zero)" : pass ? "ok" : "FAIL";
                w.WriteLine($"  {r.Tensor,-24} rel error {r.RelativeError.ToString("0.00e+00", CultureInfo.InvariantCulture)}  ({r.Elements} elements)  {verdict}");
            }
        }
        w.WriteLine(allPass ? $"all relative errors <= {threshold:g}" : $"some relative errors exceed {threshold:g}");
        return allPass ? ExitCodes.Agree : ExitCodes.Diverge;
    }
}
