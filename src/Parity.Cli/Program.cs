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
        public static int Run(string[] args)
        {
            var root = new RootCommand("Parity: train the same seeded MLP in several frameworks and show where and why they differ.")
            {
                Commands.Run(), Commands.Backends(), Commands.Demo(), Commands.Gradcheck(), Commands.Bench(), BaselineCommands.Approve(), BaselineCommands.Verify(), DiagnoseCommand.Create(), MetamorphicCommand.Create(), ImportOnnxCommand.Create(), SeedCommand.Create(),
            };
            var parsed = root.Parse(args);
            if (parsed.Errors.Count > 0)
            {
                foreach (var e in parsed.Errors) Console.Error.WriteLine($"parity: {e.Message}");
                Console.Error.WriteLine("parity: see 'parity --help'");
                return ExitCodes.Error;
            }
            try
            {
                return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
            }
            catch (Exception e) when (e is SpecException or UsageException)
            {
                Console.Error.WriteLine($"parity: {e.Message}");
                return ExitCodes.Error;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The machine, not the input: a full disk, a directory that cannot be written. Traces and reports
                // written before this point stay on disk.
                Console.Error.WriteLine($"parity: cannot write the run's files: {e.Message}");
                return ExitCodes.Error;
            }
        }
    }
}
