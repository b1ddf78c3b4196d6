using System.Text.RegularExpressions;

namespace Palisade.Tests;

/// <summary>
/// How the Kubernetes API server and Helm type a plain (unquoted) YAML scalar: both read
/// YAML through sigs.k8s.io/yaml, which follows YAML 1.1 (so yes/no/on/off are booleans).
/// </summary>
internal static partial class YamlScalars
{
    [GeneratedRegex(@"^[-+]?(0x[0-9a-fA-F]+|[0-9]+)$")]
    public static partial Regex Integer();

    [GeneratedRegex(@"^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$")]
    public static partial Regex Boolean();

    [GeneratedRegex(@"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")]
    public static partial Regex Float();

    public static bool IsTrue(string plain) => plain is "y" or "Y" or "yes" or "Yes" or "YES" or "true" or "True" or "TRUE" or "on" or "On" or "ON";
}
