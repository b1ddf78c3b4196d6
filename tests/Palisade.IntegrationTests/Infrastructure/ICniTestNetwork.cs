using System.Text.Json.Nodes;

namespace Palisade.IntegrationTests.Infrastructure;

/// <summary>
/// A CNI network a test owns, whatever plugin serves it: what podman (<see cref="Podman"/>) and
/// <see cref="CniInvoker"/> need to attach to it. The reference bridge implements it today;
/// palisade-cni's test network implements it to run the same tests on our plugin.
/// </summary>
internal interface ICniTestNetwork
{
    /// <summary>The conflist's name: podman's `--network` value.</summary>
    string Name { get; }

    /// <summary>A folder holding only this network's conflist (podman's network_config_dir).</summary>
    string ConfigDir { get; }

    /// <summary>The conflist itself, for calling the plugins directly.</summary>
    JsonObject Conflist { get; }

    /// <summary>Where the plugin binaries are, in lookup order (CNI_PATH, podman's cni_plugin_dirs).</summary>
    IReadOnlyList<string> PluginPath { get; }
}
