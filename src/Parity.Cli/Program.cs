using System.CommandLine;
using Parity.Cli;
using Parity.Harness;
using Parity.Specs;

// The parity command line. Each command returns 0 (agree), 1 (divergence) or 2 (usage, input or backend error).
return CommandLine.Run(args);

namespace Parity.Cli
{
    /// <summary>Command definitions; each command's work lives in its own file.</summary>
    internal static class CommandLine
    {
        /// <summary>Shows the stack trace of an error; without it every error is one line.</summary>
        private static readonly Option<bool> Verbose = new("--verbose") { Description = "Print the stack trace of an error", Recursive = true };

        public static int Run(string[] args)
        {
            using var terminal = TerminalWriter.Install();
            var parsed = Root().Parse(args);
            if (parsed.Errors.Count > 0)
            {
                foreach (var e in parsed.Errors) Console.Error.WriteLine($"parity: {TerminalText.Escape(e.Message)}");
                Console.Error.WriteLine("parity: see 'parity --help'");
                return ExitCodes.Error;
            }
            try
            {
                return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
            }
            catch (Exception e)
            {
                // Every failure is one line and exit 2: bad input, a damaged file, the machine, or a bug of ours.
                // Traces and reports written before this point stay on disk.
                Console.Error.WriteLine($"parity: {TerminalText.Escape(Describe(e), keepNewlines: true, indent: "  ")}");
                if (parsed.GetValue(Verbose)) Console.Error.WriteLine(e.ToString());
                else if (!IsInputError(e)) Console.Error.WriteLine("parity: run again with --verbose for the stack trace");
                return ExitCodes.Error;
            }
        }

        /// <summary>The whole command tree: what runs, and what the README's command reference is generated from (<see cref="CliReference"/>).</summary>
        internal static RootCommand Root()
        {
            var root = new RootCommand("Parity: train the same seeded MLP in several frameworks and show where and why they differ.")
            {
                Commands.Run(), Commands.Backends(), Commands.Demo(), Commands.Gradcheck(), Commands.Bench(), BaselineCommands.Approve(), BaselineCommands.Verify(), BaselineCommands.Merge(), DiagnoseCommand.Create(), MetamorphicCommand.Create(), ImportOnnxCommand.Create(), SeedCommand.Create(), ExportNpzCommand.Create(), ValidateCommand.Create(), CliReference.Create(),
            };
            root.Options.Add(Verbose);
            // --version prints Parity's one version (the one report.json and the run manifest record), not the CLI assembly's own.
            foreach (var version in root.Options.OfType<System.CommandLine.VersionOption>()) version.Action = new PrintVersion();
            return root;
        }

        private sealed class PrintVersion : System.CommandLine.Invocation.SynchronousCommandLineAction
        {
            public override int Invoke(ParseResult parseResult)
            {
                Console.WriteLine(ParityVersion.Current);
                return ExitCodes.Agree;
            }
        }

        private static bool IsInputError(Exception e) =>
            e is SpecException or UsageException or InvalidDataException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException;

        private static string Describe(Exception e) => e switch
        {
            SpecException or UsageException or Parity.IO.DirectoryInUseException => e.Message,
            InvalidDataException => $"damaged input: {e.Message}",
            FileNotFoundException => $"a file is missing: {e.Message}",
            // The machine, not the input: a full disk, a directory that cannot be written.
            IOException or UnauthorizedAccessException => $"cannot write the run's files: {e.Message}",
            OutOfMemoryException => "out of memory: the run needs more memory than this machine gave it",
            _ => $"internal error ({e.GetType().Name}): {e.Message}",
        };
    }
}
