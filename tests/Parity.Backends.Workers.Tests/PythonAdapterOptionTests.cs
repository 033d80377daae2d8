using Parity.Backends.PythonNet;
using Parity.Harness;

namespace Parity.Backends.Workers.Tests;

/// <summary>
/// <c>--python-adapter NAME=ADAPTER.py</c>: a user's adapter module becomes NAME, run in process, and NAME-worker, the
/// same module served as a worker; both run a spec and the report names them. Bad values are refused naming the value.
/// </summary>
public class PythonAdapterOptionTests
{
    private static string Option(string name) => $"{name}={WorkerRegistry.TorchAdapter}";

    [Test]
    public void An_adapter_module_runs_in_process_under_its_name_and_has_a_worker_twin_serving_the_same_module()
    {
        var registry = StandardBackends.Create();
        PythonAdapterBackend.AddFromOption(registry, Option("mine"));
        var twin = (WorkerBackend)registry.Create("mine" + PythonAdapterBackend.WorkerSuffix);
        Assert.That(twin.Name, Is.EqualTo("mine-worker"));
        Assert.That(twin.Command, Is.EqualTo(new[] { WorkerRegistry.TorchPythonInterpreter, "-u", Path.Combine(WorkerRegistry.PythonHostsDirectory, "adapter_worker.py"), WorkerRegistry.TorchAdapter }));
        var description = registry.Create("mine").Describe();
        if (!description.Available) Assert.Ignore($"the adapter cannot run in process here: {description.Reason}");
        // The twin runs like every adapter worker (the torch-python worker is this shell and module); in process, run it.
        string dir = Directory.CreateTempSubdirectory("parity-python-adapter-").FullName;
        try
        {
            var report = RunSession.Execute(new RunRequest(WorkerFaultTests.FaultPlan.Spec, null, ["reference-f32", "mine"], "reference", dir, Steps: 2), registry);
            var mine = report.Comparisons.Single(c => c.Backend == "mine");
            Assert.That(mine.Verdict.ToString().ToLowerInvariant(), Is.EqualTo("agree"), mine.Message);
            Assert.That(File.ReadAllText(Path.Combine(dir, "report.json")), Does.Contain("\"mine\"").And.Contain("in process (pythonnet)"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestCase("mine", "expected NAME=ADAPTER.py, e.g. --python-adapter mine=./my_adapter.py")]
    [TestCase("a,b=x.py", "the name may not contain '@' or ','")]
    [TestCase("mine=/no/such/adapter.py", "the adapter module /no/such/adapter.py does not exist")]
    [TestCase("mine=/etc/hostname", "/etc/hostname is not a Python module (a .py file")]
    public void A_bad_value_is_refused_naming_it(string value, string message)
    {
        var ex = Assert.Throws<ArgumentException>(() => PythonAdapterBackend.AddFromOption(StandardBackends.Create(), value));
        Assert.That(ex!.Message, Does.StartWith($"--python-adapter '{value}': ").And.Contain(message));
    }

    [TestCase("torch-python", "torch-python")]
    [TestCase("keras-like", "keras-like-worker")]
    public void A_name_already_taken_by_a_backend_or_its_worker_twin_is_refused(string name, string taken)
    {
        var registry = StandardBackends.Create().Add("keras-like-worker", WorkerRegistry.Keras);
        var ex = Assert.Throws<ArgumentException>(() => PythonAdapterBackend.AddFromOption(registry, Option(name)));
        Assert.That(ex!.Message, Does.Contain($"a backend named '{taken}' already exists"));
        Assert.That(registry.Contains(name + PythonAdapterBackend.WorkerSuffix) && registry.Contains(name), Is.False, "nothing of a refused value is registered");
    }
}
