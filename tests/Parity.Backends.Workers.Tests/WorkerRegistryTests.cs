namespace Parity.Backends.Workers.Tests;

public class WorkerRegistryTests
{
    [TestCase("node worker.js", new[] { "node", "worker.js" })]
    [TestCase("  python3   -u  'my worker.py'  ", new[] { "python3", "-u", "my worker.py" })]
    [TestCase("run \"a \\\"quoted\\\" arg\" b\\ c", new[] { "run", "a \"quoted\" arg", "b c" })]
    [TestCase("x ''", new[] { "x", "" })]
    public void Command_lines_split_like_a_posix_shell(string command, string[] expected) =>
        Assert.That(WorkerRegistry.SplitCommandLine(command), Is.EqualTo(expected));

    [Test]
    public void An_unterminated_quote_is_refused_with_the_command()
    {
        var ex = Assert.Throws<ArgumentException>(() => WorkerRegistry.SplitCommandLine("python3 'worker.py"));
        Assert.That(ex!.Message, Does.Contain("unterminated '").And.Contain("python3 'worker.py"));
    }

    [Test]
    public void A_worker_option_names_a_backend_run_by_its_command()
    {
        var backend = (WorkerBackend)WorkerRegistry.FromOption("mine=./faulty/fake-worker.py ok 3");
        Assert.That(backend.Name, Is.EqualTo("mine"));
        Assert.That(backend.Command[0], Is.EqualTo(Path.GetFullPath("./faulty/fake-worker.py")), "relative programs resolve against the current directory");
        Assert.That(backend.Command.Skip(1), Is.EqualTo(new[] { "ok", "3" }));
    }

    [TestCase("mine")]
    [TestCase("=python3 w.py")]
    [TestCase("mine=")]
    public void A_malformed_worker_option_says_what_is_expected(string option)
    {
        var ex = Assert.Throws<ArgumentException>(() => WorkerRegistry.FromOption(option));
        Assert.That(ex!.Message, Does.Contain("expected NAME=COMMAND"));
    }

    [Test]
    public void Built_in_workers_register_like_user_workers()
    {
        var registry = new BackendRegistry().AddBuiltInWorkers();
        Assert.That(registry.Names, Is.EqualTo(new[] { "keras", "torch-python" }));
        var keras = (WorkerBackend)registry.Create("keras");
        Assert.That(keras.Command[0], Is.EqualTo("node"));
        Assert.That(File.Exists(keras.Command[1]), Is.True, keras.Command[1]);
        var torch = (WorkerBackend)registry.Create("torch-python");
        Assert.That(File.Exists(torch.Command[^1]), Is.True, torch.Command[^1]);
    }

    [Test]
    public void A_missing_worker_folder_makes_the_built_ins_unavailable_with_the_path()
    {
        string empty = Directory.CreateTempSubdirectory("parity-workers-").FullName;
        Environment.SetEnvironmentVariable(WorkerRegistry.WorkersDirectoryVariable, empty);
        try
        {
            var description = WorkerRegistry.Keras().Describe();
            Assert.That(description.Available, Is.False);
            Assert.That(description.Reason, Does.Contain("the keras worker script is missing: " + Path.Combine(empty, "keras", "worker.js")));
            Assert.That(WorkerRegistry.TorchPython().Describe().Reason, Does.Contain("torch-python worker script is missing"));
        }
        finally
        {
            Environment.SetEnvironmentVariable(WorkerRegistry.WorkersDirectoryVariable, null);
            Directory.Delete(empty);
        }
    }
}
