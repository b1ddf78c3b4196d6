using Palisade.Cni;

// A runtime runs this once per operation and waits for it: read stdin (unless it is a
// terminal), answer, exit. Nothing else starts, so the NativeAOT binary exits in milliseconds.
using var stdin = Console.IsInputRedirected ? Console.OpenStandardInput() : null;
using var stdout = Console.OpenStandardOutput();
return await new CniPlugin(Environment.GetEnvironmentVariable, stdout, Console.Error).RunAsync(stdin).ConfigureAwait(false);
