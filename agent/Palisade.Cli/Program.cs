using System.CommandLine;
using Palisade.Cli;

return await PalisadeCommand.Create().Parse(args).InvokeAsync(new InvocationConfiguration
{
    // The agent host handles SIGTERM/SIGINT itself and detaches before exiting.
    ProcessTerminationTimeout = null,
}).ConfigureAwait(false);
