using Palisade.Fuzz;

// palisade-fuzz TARGET                 run under afl-fuzz (fuzz.sh does this): one input per run on stdin
// palisade-fuzz TARGET --replay FILE…  run inputs directly; exit 1 on the first that breaks the target's contract
// palisade-fuzz TARGET --seeds DIR     write the hand-made seeds of TARGET into DIR
if (args.Length == 0 || !FuzzTargets.All.TryGetValue(args[0], out var target))
{
    Console.Error.WriteLine($"usage: palisade-fuzz {string.Join('|', FuzzTargets.All.Keys)} [--replay FILE... | --seeds DIR]");
    return 2;
}
if (args.Length > 2 && args[1] == "--replay")
{
    foreach (var file in args[2..])
    {
        try
        {
            target.Run(File.ReadAllBytes(file));
        }
#pragma warning disable CA1031 // a replay reports every broken contract, whatever its type
        catch (Exception e)
#pragma warning restore CA1031
        {
            Console.Error.WriteLine($"{file}: {e}");
            return 1;
        }
    }
    Console.WriteLine($"{args.Length - 2} inputs: every one ended in a verdict");
    return 0;
}
if (args.Length == 3 && args[1] == "--seeds")
{
    Directory.CreateDirectory(args[2]);
    var n = 0;
    foreach (var (name, bytes) in target.Seeds())
    {
        File.WriteAllBytes(Path.Combine(args[2], name), bytes);
        n++;
    }
    Console.WriteLine($"{n} seeds written to {args[2]}");
    return 0;
}
SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target.Run(buffer.ToArray());
});
return 0;
