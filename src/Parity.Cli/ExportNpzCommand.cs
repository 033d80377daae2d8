using System.CommandLine;
using Parity.Data;
using Parity.Harness;
using Parity.IO;

namespace Parity.Cli;

/// <summary>
/// <c>parity export-npz RUN_DIR</c>: every trace of a run as one NumPy <c>.npz</c> archive per backend, so the tensors
/// open in Python with <c>numpy.load</c>. Array names are <c>PHASE/STEP/KIND:SITE</c> (<c>train/3/forward:l1</c>,
/// <c>initial/0/parameter:l1.weight</c>, <c>eval/10/evalLoss</c>), in the order the trace holds them.
/// </summary>
internal static class ExportNpzCommand
{
    public static Command Create()
    {
        var runDirectory = new Argument<string>("run") { Description = "Run directory (written by 'parity run')" };
        var output = new Option<string?>("--out") { Description = "Directory for the archives (default RUN/npz)" };
        var backends = new Option<string?>("--backends") { Description = "Backends to export, comma-separated (default: every trace of the run)" };
        var command = new Command("export-npz", "Write each backend's trace as a NumPy .npz archive (numpy.load opens it)") { runDirectory, output, backends };
        command.SetAction(r => Execute(r.GetValue(runDirectory)!, r.GetValue(output), r.GetValue(backends) is { } b ? Commands.SplitList(b) : null, Console.Out));
        return command;
    }

    public static int Execute(string runDirectory, string? outDirectory, IReadOnlyList<string>? only, TextWriter w)
    {
        var run = DiagnosedRun.Read(runDirectory);
        var chosen = run.Backends.Where(b => only is null || only.Contains(b.Name)).ToList();
        foreach (string missing in only?.Where(n => run.Backends.All(b => b.Name != n)) ?? [])
            throw new UsageException($"{runDirectory}: the run has no backend '{missing}'; it has: {string.Join(", ", run.Backends.Select(b => b.Name))}");
        string output = outDirectory ?? Path.Combine(runDirectory, "npz");
        int written = 0;
        foreach (var backend in chosen)
        {
            if (!Directory.Exists(Path.Combine(runDirectory, backend.Trace)))
            {
                w.WriteLine($"skipped {TerminalText.Escape(backend.Name)}: "
                    + (TraceRetentions.WhyAbsent(runDirectory, backend.Name) ?? $"its trace is missing ({backend.Trace})"));
                continue;
            }
            var trace = run.OpenTrace(runDirectory, backend);
            string file = PathNames.Under(output, backend.Name) + ".npz";
            Directory.CreateDirectory(output);
            string partial = file + ".partial";
            int arrays = 0;
            using (var stream = File.Create(partial))
            using (var npz = new NpzWriter(stream))
            {
                foreach (var record in trace.Records())
                    foreach (var entry in record.Entries)
                    {
                        npz.Add($"{record.Phase.ToString().ToLowerInvariant()}/{record.Step}/{entry.Key}", entry.Value);
                        arrays++;
                    }
            }
            File.Move(partial, file, overwrite: true);
            w.WriteLine($"{TerminalText.Escape(backend.Name)} ({trace.Header.DType}): {arrays} arrays -> {TerminalText.Escape(file)}");
            written++;
        }
        if (written == 0) throw new UsageException($"{runDirectory}: no trace to export");
        w.WriteLine("open with: python3 -c \"import numpy as np; a = np.load('FILE'); print(a.files[:5])\"");
        return 0;
    }
}
