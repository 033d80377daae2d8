using Parity.Specs.Tests;
using Parity.Tests;

namespace Parity.IO.Tests;

public sealed class DataFileTests
{
    [Test]
    public void A_regular_file_opens_for_reading()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("x"), "abc");
        using var stream = DataFile.OpenRead(dir.File("x"));
        Assert.That(stream.Length, Is.EqualTo(3));
    }

    [Test]
    public void A_directory_is_named_as_a_directory()
    {
        using var dir = new TempDirectory();
        var e = Assert.Throws<InvalidDataException>(() => DataFile.OpenRead(dir.Path))!;
        Assert.That(e.Message, Is.EqualTo($"{dir.Path} is a directory, not a file"));
    }

    [Test]
    public void A_missing_file_is_file_not_found()
    {
        var e = Assert.Throws<FileNotFoundException>(() => DataFile.OpenRead("/nonexistent/x.idx"))!;
        Assert.That(e.Message, Does.Contain("/nonexistent/x.idx"));
    }

    [TestCase("/dev/zero")]
    [TestCase("/dev/urandom")]
    [TestCase("/proc/self/mem")]
    [TestCase("/proc/self/status")]
    public void A_device_or_pseudo_file_that_reads_past_its_length_is_not_a_regular_file(string path)
    {
        if (!File.Exists(path)) Assert.Ignore($"{path} does not exist here");
        var e = Assert.Throws<InvalidDataException>(() => DataFile.OpenRead(path))!;
        Assert.That(e.Message, Does.StartWith($"{path} is not a regular file"));
    }

    [Test]
    public void An_empty_regular_file_is_a_regular_file()
    {
        using var dir = new TempDirectory();
        File.WriteAllBytes(dir.File("empty"), []);
        using var stream = DataFile.OpenRead(dir.File("empty"));
        Assert.That(stream.Length, Is.Zero);
    }

    [Test]
    public void A_named_pipe_without_a_writer_is_refused_at_once_not_waited_on()
    {
        using var dir = new TempDirectory();
        string fifo = HostileSpecs.MakeFifo(dir.File("fifo"));
        // A blocking open would never return: run it where the test can give up on it.
        var open = Task.Run(() => Assert.Throws<InvalidDataException>(() => DataFile.OpenRead(fifo)));
        Assert.That(open.Wait(TimeSpan.FromSeconds(30)), Is.True, "opening a named pipe must not block");
        Assert.That(open.Result!.Message, Does.Contain("not a regular file"));
        Assert.DoesNotThrow(() => DataFile.RequireRegularIfPresent(dir.File("absent")));
        Assert.Throws<InvalidDataException>(() => DataFile.RequireRegularIfPresent(fifo));
    }
}
