using System.Text.RegularExpressions;
using Palisade.Policies.Schema;
using Palisade.Policies.Tracing;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Palisade.Tests;

/// <summary>
/// The CRDs are generated from the schema the parser uses; these tests keep the chart's copy
/// equal to the generated one and show the schema admits what users already have.
/// </summary>
public sealed partial class CrdTests
{
    [Fact]
    public void TheChartShipsExactlyTheGeneratedCrds()
    {
        var dir = Path.Combine(RepoPaths.Root, "helm", "palisade", "files", "crds");
        var generated = CrdGenerator.Generate();
        foreach (var (file, yaml) in generated)
        {
            var path = Path.Combine(dir, file);
            Assert.True(File.Exists(path), $"{path} is missing. Fix: ./artifacts/palisade crds --out helm/palisade/files/crds");
            Assert.True(yaml == File.ReadAllText(path), $"{path} differs from the schema in policies/Palisade.Policies/Schema. Fix: ./artifacts/palisade crds --out helm/palisade/files/crds");
        }
        Assert.Equal(generated.Select(g => g.File).Append(IdentityCrdFile).Order(), Directory.GetFiles(dir).Select(Path.GetFileName).Order());
    }

    /// <summary>The one CRD not generated from a policy schema: the agents' own cluster-wide identities.</summary>
    private const string IdentityCrdFile = "palisade.io_palisadeidentities.yaml";

    [Fact]
    public void TheIdentityCrdIsStructuralAndNamesWhatTheAllocatorUses()
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(RepoPaths.Root, "helm", "palisade", "files", "crds", IdentityCrdFile))));
        var root = (YamlMappingNode)stream.Documents.Single().RootNode;
        var spec = (YamlMappingNode)root["spec"];
        var names = (YamlMappingNode)spec["names"];
        var version = (YamlMappingNode)((YamlSequenceNode)spec["versions"]).Single();

        Assert.Equal($"{Palisade.Kubernetes.Identities.IdentityObject.Plural}.{Palisade.Kubernetes.Identities.IdentityObject.Group}", ((YamlMappingNode)root["metadata"])["name"].ToString());
        Assert.Equal(Palisade.Kubernetes.Identities.IdentityObject.Group, spec["group"].ToString());
        Assert.Equal("Cluster", spec["scope"].ToString());
        Assert.Equal(Palisade.Kubernetes.Identities.IdentityObject.Kind, names["kind"].ToString());
        Assert.Equal(Palisade.Kubernetes.Identities.IdentityObject.Plural, names["plural"].ToString());
        Assert.Equal(Palisade.Kubernetes.Identities.IdentityObject.Version, version["name"].ToString());
        var schema = ((YamlMappingNode)version["schema"])["openAPIV3Schema"];
        AssertStructural(schema, "openAPIV3Schema");
        Assert.Equal("string", ((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)((YamlMappingNode)schema)["properties"])["security-labels"])["additionalProperties"])["type"].ToString());
        var rbac = File.ReadAllText(Path.Combine(RepoPaths.Root, "helm", "palisade", "templates", "rbac.yaml"));
        Assert.Contains("resources: [\"palisadeidentities\"]\n    verbs: [\"get\", \"list\", \"watch\", \"create\", \"patch\", \"delete\"]", rbac, StringComparison.Ordinal);
    }

    [Fact]
    public void TheGeneratedCrdsAreStructuralAndNamedAsTetragons()
    {
        foreach (var (_, yaml) in CrdGenerator.Generate())
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            var root = (YamlMappingNode)stream.Documents.Single().RootNode;
            var spec = (YamlMappingNode)root["spec"];
            Assert.Equal("cilium.io", spec["group"].ToString());
            var version = (YamlMappingNode)((YamlSequenceNode)spec["versions"]).Single();
            Assert.Equal("v1alpha1", version["name"].ToString());
            AssertStructural(((YamlMappingNode)version["schema"])["openAPIV3Schema"], "openAPIV3Schema");
        }
    }

    // Kubernetes requires a type on every schema node except those that keep unknown fields.
    private static void AssertStructural(YamlNode node, string path)
    {
        var map = Assert.IsType<YamlMappingNode>(node);
        Assert.True(map.Children.ContainsKey("type") || map.Children.ContainsKey("x-kubernetes-preserve-unknown-fields"), $"{path} has no type");
        if (map.Children.TryGetValue("properties", out var properties))
        {
            foreach (var (name, child) in ((YamlMappingNode)properties).Children)
            {
                AssertStructural(child, $"{path}.{name}");
            }
        }
        foreach (var key in new[] { "items", "additionalProperties" })
        {
            if (map.Children.TryGetValue(key, out var child))
            {
                AssertStructural(child, $"{path}.{key}");
            }
        }
    }

    public static TheoryData<string> TetragonExamples() => TetragonExamplesCompatibilityTests.Files();

    [Theory]
    [MemberData(nameof(TetragonExamples))]
    public void EveryPublishedTetragonPolicyIsAdmittedByTheCrdSchema(string file)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Path.Combine(TetragonExamplesCompatibilityTests.ExamplesDir(), file))));
        // Only the policy documents: some files also hold the Pod a demo needs.
        foreach (var doc in stream.Documents.Where(d => d.RootNode is YamlMappingNode m && m.Children.TryGetValue("kind", out var k)
            && Palisade.Policies.Tracing.Vocabulary.Kinds.Contains(k.ToString())))
        {
            var errors = new List<string>();
            Validate(((YamlMappingNode)doc.RootNode)["spec"], TracingPolicySchema.Spec, "spec", errors);
            Assert.True(errors.Count == 0, string.Join(Environment.NewLine, errors));
        }
    }

    [Theory]
    [InlineData("kprobes: [{call: x, syscal: true}]", "spec.kprobes[0].syscal: unknown field")]
    [InlineData("kprobes: [{call: x, args: [{index: 0, type: strin}]}]", "spec.kprobes[0].args[0].type: \"strin\" is not one of")]
    [InlineData("kprobes: [{call: x, args: [{index: first, type: int}]}]", "spec.kprobes[0].args[0].index: must be an integer")]
    [InlineData("kprobes: [{syscall: true}]", "spec.kprobes[0].call: required")]
    [InlineData("kprobes: [{call: x, selectors: [{matchArgs: [{index: 0, operator: Equal, values: [80]}]}]}]", "values[0]: must be a string")]
    [InlineData("kprobes: [{call: x, selectors: [{}, {}, {}, {}, {}, {}]}]", "spec.kprobes[0].selectors: at most 5 items")]
    public void TheSchemaRefusesWhatTheApiServerWould(string spec, string expected)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(spec));
        var errors = new List<string>();
        Validate(stream.Documents[0].RootNode, TracingPolicySchema.Spec, "spec", errors);
        Assert.Contains(errors, e => e.Contains(expected, StringComparison.Ordinal));
    }

    private static bool IsNull(YamlNode node) => node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" };

    // What the API server does with a structural schema (YAML 1.1 scalars, as sigs.k8s.io/yaml
    // reads them): type per node, enums, required fields, maxItems, unknown fields refused.
    private static void Validate(YamlNode node, SchemaType type, string path, List<string> errors)
    {
        if (IsNull(node) || type is AnyType)
        {
            return;
        }
        var plain = node is YamlScalarNode { Style: ScalarStyle.Plain } p ? p.Value ?? "" : null;
        switch (type)
        {
            case StringType s:
                if (node is not YamlScalarNode scalar || (plain is not null && (YamlScalars.Integer().IsMatch(plain) || YamlScalars.Boolean().IsMatch(plain) || YamlScalars.Float().IsMatch(plain))))
                {
                    errors.Add($"{path}: must be a string");
                }
                else if (s.Enum is { } values && !values.Contains(scalar.Value))
                {
                    errors.Add($"{path}: \"{scalar.Value}\" is not one of {string.Join(", ", values)}");
                }
                break;
            case IntegerType:
                if (plain is null || !YamlScalars.Integer().IsMatch(plain))
                {
                    errors.Add($"{path}: must be an integer");
                }
                break;
            case BooleanType:
                if (plain is null || !YamlScalars.Boolean().IsMatch(plain))
                {
                    errors.Add($"{path}: must be a boolean");
                }
                break;
            case ArrayType a:
                if (node is not YamlSequenceNode seq)
                {
                    errors.Add($"{path}: must be a list");
                    break;
                }
                if (a.MaxItems is { } max && seq.Children.Count > max)
                {
                    errors.Add($"{path}: at most {max} items");
                }
                for (var i = 0; i < seq.Children.Count; i++)
                {
                    Validate(seq.Children[i], a.Items, $"{path}[{i}]", errors);
                }
                break;
            case StringMapType:
                if (node is not YamlMappingNode labels)
                {
                    errors.Add($"{path}: must be a map");
                    break;
                }
                foreach (var (key, value) in labels.Children)
                {
                    Validate(value, new StringType(""), $"{path}.{key}", errors);
                }
                break;
            case ObjectType o:
                if (node is not YamlMappingNode map)
                {
                    errors.Add($"{path}: must be an object");
                    break;
                }
                foreach (var (key, value) in map.Children)
                {
                    var name = key.ToString();
                    if (o.Fields.FirstOrDefault(f => f.Name == name) is { } field)
                    {
                        Validate(value, field.Type, $"{path}.{name}", errors);
                    }
                    else
                    {
                        errors.Add($"{path}.{name}: unknown field");
                    }
                }
                foreach (var required in o.Fields.Where(f => f.Required && !map.Children.ContainsKey(f.Name)))
                {
                    errors.Add($"{path}.{required.Name}: required");
                }
                break;
        }
    }
}
