using System.Diagnostics;
using System.Text;
using Parity.Planning;
using Parity.Randomness;
using Parity.Tests;

namespace Parity.Specs.Tests;

/// <summary>
/// Feeds thousands of seeded random mutations of every fixture to the loader (and, when the result is
/// valid and small, to the planner) and requires that each ends in a <see cref="SpecException"/> or a
/// valid spec: never another exception, never a hang.
/// </summary>
public sealed class SpecFuzzTests
{
    private const int MutantsPerSource = 200;
    // Generous: a case takes milliseconds; the limit only has to tell a hang from a machine under load.
    private static readonly TimeSpan PerCaseLimit = TimeSpan.FromSeconds(10);

    private static IEnumerable<(string Name, string Text)> Sources() =>
        Repository.FixtureNames().Select(f => (f, File.ReadAllText(Repository.Fixture(f))))
            .Append(("base", SpecLoaderTests.BaseSpec))
            .Append(("every-key", SpecLoaderTests.EveryKeySpec));

    [Test]
    public void Mutated_specs_end_in_a_spec_error_or_a_valid_plan()
    {
        IEnumerable<(string Name, string Shown, Func<Outcome> Run)> Cases()
        {
            foreach (var (name, text) in Sources())
            {
                var rng = ParityRandom.Derive(20261122, "fuzz/" + name);
                // The spec that uses every key reaches every branch of the loader: it gets the most mutants.
                int mutants = name == "every-key" ? 4 * MutantsPerSource : MutantsPerSource;
                for (int i = 0; i < mutants; i++)
                {
                    string mutant = SpecMutations.Mutant(text, rng);
                    yield return ($"{name} mutant {i}", mutant, () => Run(() => SpecLoader.Parse(mutant)));
                }
            }
        }

        var tally = RunWatched(Cases());
        Assert.That(tally.Rejected, Is.GreaterThan(tally.Total / 2), "most mutants must be rejected, or the mutations are too weak");
        Assert.That(tally.Planned, Is.GreaterThan(0), "some mutants must survive to the planner");
    }

    /// <summary>
    /// A few hundred hostile spec files (<see cref="HostileSpecs"/>: every category of a probe of the CLI, bytes and
    /// encodings included) through <see cref="SpecLoader.LoadFile"/> and the planner: each ends in a spec error that
    /// names the file and a JSON path, or a valid plan. tests/Parity.Cli.Tests runs a sample of them through the CLI.
    /// </summary>
    [Test]
    public void Hostile_spec_files_end_in_a_spec_error_naming_file_and_path_or_a_valid_plan()
    {
        using var dir = new TempDirectory();
        Directory.CreateDirectory(dir.File("data/dir"));
        Directory.CreateDirectory(dir.File("data/trace"));
        HostileSpecs.MakeFifo(dir.File("data/fifo"));
        HostileSpecs.MakeFifo(dir.File("data/trace/trace.json"));
        var sources = new[] { "synthetic-mlp-bn.json" }.Concat(Repository.FixtureNames()).Select(f => (f, File.ReadAllText(Repository.Fixture(f))))
            .Append(("every-key", SpecLoaderTests.EveryKeySpec)).ToList();
        var specs = HostileSpecs.Generate(sources, perCategory: 24, seed: 20261201, dir.File("data/fifo"), dir.File("data/dir"), dir.File("data/trace"));

        IEnumerable<(string Name, string Shown, Func<Outcome> Run)> Cases()
        {
            foreach (var (spec, i) in specs.Select((s, i) => (s, i)))
            {
                string path = dir.File($"spec{i}.json");
                File.WriteAllBytes(path, spec.Bytes);
                yield return (spec.Name, Encoding.UTF8.GetString(spec.Bytes), () => Run(() => SpecLoader.LoadFile(path), path));
            }
        }

        var tally = RunWatched(Cases());
        Assert.That(tally.Total, Is.EqualTo(HostileSpecs.Categories.Length * 24));
        Assert.That(tally.Rejected, Is.GreaterThan(tally.Total / 2));
        Assert.That(tally.Planned, Is.GreaterThan(0));
    }

    private sealed record Tally(int Total, int Rejected, int Loaded, int Planned);

    /// <summary>
    /// Runs the cases inline on one thread (they are cheap) while this thread fails the test as soon as one case has
    /// run longer than the limit, naming it: a hang ends the test, not the test run. Fails on any case that failed.
    /// </summary>
    private static Tally RunWatched(IEnumerable<(string Name, string Shown, Func<Outcome> Run)> cases)
    {
        var failures = new List<string>();
        int rejected = 0, loaded = 0, planned = 0, total = 0;
        var clock = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        string slowestCase = "";
        var watch = new CaseWatch();
        var loop = Task.Run(() =>
        {
            foreach (var (name, shown, run) in cases)
            {
                total++;
                var started = clock.Elapsed;
                watch.Begin(name, shown, started);
                var outcome = run();
                var took = clock.Elapsed - started;
                if (took > slowest) (slowest, slowestCase) = (took, $"{name} ({outcome.Kind})");
                switch (outcome.Kind)
                {
                    case OutcomeKind.Rejected: rejected++; break;
                    case OutcomeKind.Loaded: loaded++; break;
                    case OutcomeKind.Planned: loaded++; planned++; break;
                    default: failures.Add($"{name}: {outcome.Detail}\n--- spec ---\n{Shorten(shown)}"); break;
                }
            }
        });
        while (!loop.Wait(50))
        {
            var (current, spec, since) = watch.Current;
            if (clock.Elapsed - since > PerCaseLimit)
                Assert.Fail($"{current} did not finish within {PerCaseLimit.TotalSeconds} s\n--- spec ---\n{Shorten(spec)}");
        }
        loop.GetAwaiter().GetResult();

        TestContext.Out.WriteLine($"{total} mutants in {clock.Elapsed.TotalSeconds:F1} s: {rejected} rejected, {loaded} loaded, {planned} planned; slowest {slowest.TotalMilliseconds:F0} ms: {slowestCase}");
        Assert.That(failures, Is.Empty, string.Join("\n\n", failures.Take(5)));
        return new Tally(total, rejected, loaded, planned);
    }

    /// <summary>Which case is running since when, published by the fuzz loop for the watching thread.</summary>
    private sealed class CaseWatch
    {
        private (string Name, string Spec, TimeSpan Since) _current = ("(none)", "", TimeSpan.MaxValue);

        public (string Name, string Spec, TimeSpan Since) Current
        {
            get
            {
                lock (this) return _current;
            }
        }

        public void Begin(string name, string spec, TimeSpan since)
        {
            lock (this) _current = (name, spec, since);
        }
    }

    private enum OutcomeKind { Rejected, Loaded, Planned, Failed }

    private readonly record struct Outcome(OutcomeKind Kind, string Detail = "");

    // Planning runs under a fixed budget, so a bomb the planner should refuse cannot take a large test machine down.
    private const long PlanningBudget = 2L << 30;

    /// <param name="load">Loads the spec.</param>
    /// <param name="file">The spec file, which every error must name first; null for text.</param>
    private static Outcome Run(Func<ScenarioSpec> load, string? file = null)
    {
        Outcome? Misplaced(SpecException e) =>
            !e.JsonPath.StartsWith('$') ? new Outcome(OutcomeKind.Failed, $"spec error without a JSON path: {e.Message}")
            : file is not null && !e.Message.StartsWith(file + ": $", StringComparison.Ordinal) ? new Outcome(OutcomeKind.Failed, $"spec error without the file: {e.Message}")
            : null;
        ScenarioSpec spec;
        try
        {
            spec = load();
        }
        catch (SpecException e)
        {
            return Misplaced(e) ?? new Outcome(OutcomeKind.Rejected);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"loader threw {e}");
        }

        try
        {
            string again = SpecLoader.Parse(spec.CanonicalJson).CanonicalJson;
            if (again != spec.CanonicalJson) return new Outcome(OutcomeKind.Failed, "canonical JSON does not read back to itself:\n" + spec.CanonicalJson + "\n---\n" + again);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"canonical JSON does not load: {e}\n{spec.CanonicalJson}");
        }

        if (!Plannable(spec)) return new Outcome(OutcomeKind.Loaded);
        try
        {
            var plan = Planner.Build(spec, memoryBudget: PlanningBudget);
            plan.BatchFor(1);
            plan.BatchFor(plan.TotalSteps);
            plan.EvalBatches().ToList();
            return new Outcome(OutcomeKind.Planned);
        }
        catch (SpecException e)
        {
            return Misplaced(e) ?? new Outcome(OutcomeKind.Rejected);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Failed, $"planner threw {e}");
        }
    }

    // The planner test is for the planner's own checks, not for generating or reading big data sets quickly: small
    // synthetic data, and IDX paths other than the real Fashion-MNIST files (hostile paths fail at once).
    private static bool Plannable(ScenarioSpec spec)
    {
        static bool Small(DataSourceSpec? s) => s switch
        {
            null => true,
            SyntheticSourceSpec syn => syn.Samples <= 4000 && (long)syn.Samples * syn.Features * syn.Features <= 4_000_000,
            IdxSourceSpec idx => !idx.Images.StartsWith("fashion-mnist:", StringComparison.Ordinal) || idx.Images.Contains("..", StringComparison.Ordinal),
            _ => false,
        };
        long weights = spec.Model.Layers.OfType<LinearSpec>().Sum(l => (long)l.In * l.Out);
        return Small(spec.Data.Train) && Small(spec.Data.Eval) && weights <= 1_000_000;
    }

    private static string Shorten(string s) => s.Length <= 3000 ? s : s[..3000] + "...";
}
