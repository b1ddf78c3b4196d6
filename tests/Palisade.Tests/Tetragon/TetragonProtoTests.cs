using Google.Protobuf.Reflection;
using T = Palisade.Api.Tetragon;

namespace Palisade.Tests.Tetragon;

/// <summary>
/// Our copy of Tetragon's protos is Tetragon's wire format: every enum value, field (number,
/// label, type) and RPC equals the table written from Tetragon's published protos, both ways,
/// so a renumbered, retyped, added or dropped field fails here before it breaks `tetra`.
/// </summary>
public sealed class TetragonProtoTests
{
    private static readonly FileDescriptor[] Files =
    [
        T.BpfReflection.Descriptor, T.CapabilitiesReflection.Descriptor, T.TetragonReflection.Descriptor,
        T.EventsReflection.Descriptor, T.SensorsReflection.Descriptor,
    ];

    private static HashSet<string> Published() =>
        [.. File.ReadAllLines(Path.Combine(AppContext.BaseDirectory, "Tetragon", "tetragon-api.txt"))
            .Where(l => l.Length > 0 && !l.StartsWith('#'))];

    private static IEnumerable<string> Ours()
    {
        foreach (var file in Files)
        {
            Assert.Equal("tetragon", file.Package);
            foreach (var e in file.EnumTypes)
            {
                foreach (var row in Enum(e, e.Name))
                {
                    yield return row;
                }
            }
            foreach (var m in file.MessageTypes)
            {
                foreach (var row in Message(m, m.Name))
                {
                    yield return row;
                }
            }
            foreach (var s in file.Services)
            {
                foreach (var method in s.Methods)
                {
                    yield return $"rpc {s.Name}.{method.Name} {(method.IsClientStreaming ? "stream " : "")}{method.InputType.Name} {(method.IsServerStreaming ? "stream " : "")}{method.OutputType.Name}";
                }
            }
        }
    }

    private static IEnumerable<string> Enum(EnumDescriptor e, string path) => e.Values.Select(v => $"enum {path}.{v.Name} {v.Number}");

    private static IEnumerable<string> Message(MessageDescriptor m, string path)
    {
        foreach (var nested in m.NestedTypes.Where(n => !n.GetOptions()?.MapEntry ?? true))
        {
            foreach (var row in Message(nested, $"{path}.{nested.Name}"))
            {
                yield return row;
            }
        }
        foreach (var e in m.EnumTypes)
        {
            foreach (var row in Enum(e, $"{path}.{e.Name}"))
            {
                yield return row;
            }
        }
        foreach (var f in m.Fields.InDeclarationOrder())
        {
            var label = f.IsMap ? "" : f.IsRepeated ? "repeated " : f.RealContainingOneof is { } oneof ? $"oneof {oneof.Name} " : f.ContainingOneof is not null ? "optional " : "";
            yield return $"field {path}.{f.Name} {f.FieldNumber} {label}{Type(f)}";
        }
    }

    private static string Type(FieldDescriptor f)
    {
        if (f.IsMap)
        {
            return $"map<{Type(f.MessageType.FindFieldByNumber(1))},{Type(f.MessageType.FindFieldByNumber(2))}>";
        }
        return f.FieldType switch
        {
            FieldType.Message or FieldType.Group => Named(f.MessageType.File.Package, f.MessageType.FullName, f.MessageType.Name),
            FieldType.Enum => Named(f.EnumType.File.Package, f.EnumType.FullName, f.EnumType.Name),
            _ => f.FieldType.ToString().ToLowerInvariant(),
        };
    }

    // The table writes types as the .proto does: well-known types in full, our own by name.
    private static string Named(string package, string fullName, string name) => package == "google.protobuf" ? fullName : name;

    [Fact]
    public void EveryEnumValueFieldAndRpcIsTetragons()
    {
        var published = Published();
        var ours = Ours().ToList();
        Assert.True(published.Count > 600, $"the table has only {published.Count} rows");
        var drifted = ours.Where(r => !published.Contains(r)).ToList();
        var missing = published.Where(r => !ours.Contains(r)).ToList();
        Assert.True(drifted.Count == 0 && missing.Count == 0,
            $"our tetragon protos differ from Tetragon's published ones.\nOurs, not Tetragon's:\n  {string.Join("\n  ", drifted)}\nTetragon's, not ours:\n  {string.Join("\n  ", missing)}");
    }

    [Theory]
    [InlineData("GetEventsResponse.process_exec", 1)]
    [InlineData("GetEventsResponse.process_lsm", 28)]
    [InlineData("GetEventsResponse.node_name", 1000)]
    [InlineData("GetEventsResponse.time", 1001)]
    [InlineData("GetEventsResponse.aggregation_info", 1002)]
    [InlineData("Process.in_init_tree", 20)]
    [InlineData("Filter.container_id", 15)]
    [InlineData("KprobeArgument.sock_arg", 9)]
    public void TheNumbersClientsDependOnMostAreTetragons(string field, int number)
    {
        var (message, name) = (field[..field.IndexOf('.', StringComparison.Ordinal)], field[(field.IndexOf('.', StringComparison.Ordinal) + 1)..]);
        var descriptor = Files.SelectMany(f => f.MessageTypes).Single(m => m.Name == message);
        Assert.Equal(number, descriptor.FindFieldByName(name).FieldNumber);
    }
}
