using System.Net;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using Microsoft.Extensions.Logging;

namespace Palisade.Kubernetes;

/// <summary>
/// Writes this node's view of each policy back to the cluster, off the policy path: a merge
/// patch of status.nodes.&lt;node&gt; on the policy's status subresource, and a Kubernetes Event
/// when the policy's state on this node changes, so `kubectl describe tracingpolicy X` says why
/// it does not run on node Y. Reports are coalesced per policy (the newest wins) and retried
/// with backoff; a policy deleted meanwhile is dropped quietly.
/// </summary>
public sealed partial class StatusReporter
{
    private readonly IKubernetes _client;
    private readonly string _node;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, NodePolicyReport> _queue = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _lastState = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _signal = new(0);
    private long _patched, _events, _failures;

    public StatusReporter(IKubernetes client, string node, ILogger logger, TimeProvider? time = null)
    {
        _client = client;
        _node = node;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public long Patched => Interlocked.Read(ref _patched);
    public long EventsCreated => Interlocked.Read(ref _events);
    public long Failures => Interlocked.Read(ref _failures);

    public void Enqueue(NodePolicyReport report)
    {
        lock (_gate)
        {
            _queue[$"{report.Kind}/{report.Namespace}/{report.Name}"] = report;
        }
        _signal.Release();
    }

    public async Task RunAsync(CancellationToken cancel)
    {
        var failures = 0;
        while (!cancel.IsCancellationRequested)
        {
            try
            {
                await _signal.WaitAsync(cancel).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
            List<KeyValuePair<string, NodePolicyReport>> batch;
            lock (_gate)
            {
                batch = [.. _queue];
                _queue.Clear();
            }
            foreach (var (key, report) in batch)
            {
                try
                {
                    await SendAsync(key, report, cancel).ConfigureAwait(false);
                    failures = 0;
                }
                catch (OperationCanceledException) when (cancel.IsCancellationRequested)
                {
                    return;
                }
                catch (HttpOperationException e) when (e.Response?.StatusCode == HttpStatusCode.NotFound)
                {
                    // The policy is gone: nothing to report on.
                }
                catch (Exception e) when (e is HttpOperationException or HttpRequestException or IOException or TaskCanceledException)
                {
                    Interlocked.Increment(ref _failures);
                    LogFailed(_logger, report.Kind, report.Name, e.Message);
                    lock (_gate)
                    {
                        _queue.TryAdd(key, report); // unless a newer report came meanwhile
                    }
                    failures++;
                    var delay = TimeSpan.FromMilliseconds(Math.Min(30_000, 250 * Math.Pow(2, Math.Min(failures, 8))) * (0.5 + Random.Shared.NextDouble() / 2));
                    _ = Task.Delay(delay, cancel).ContinueWith(_ => _signal.Release(), TaskScheduler.Default);
                }
            }
        }
    }

    /// <summary>The merge patch for one node's entry.</summary>
    public static string StatusPatch(string node, NodePolicyReport r, DateTimeOffset now) =>
        JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["status"] = new Dictionary<string, object>
            {
                ["nodes"] = new Dictionary<string, object>
                {
                    [node] = new Dictionary<string, object>
                    {
                        ["state"] = r.State,
                        ["mode"] = r.Mode,
                        ["message"] = r.Message,
                        ["hooks"] = r.Hooks.Select(h => new Dictionary<string, string> { ["hook"] = $"{h.Type} {h.Name}", ["status"] = h.Mode, ["detail"] = h.Detail }).ToList(),
                        ["kernelMemoryBytes"] = r.KernelMemoryBytes,
                        ["observedGeneration"] = r.Generation,
                        ["lastUpdateTime"] = now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
                    },
                },
            },
        });

    private async Task SendAsync(string key, NodePolicyReport r, CancellationToken cancel)
    {
        var now = _time.GetUtcNow();
        var patch = new V1Patch(StatusPatch(_node, r, now), V1Patch.PatchType.MergePatch);
        var plural = r.Namespace is null ? Resources.TracingPoliciesPlural : Resources.TracingPoliciesNamespacedPlural;
        using (r.Namespace is null
            ? await _client.CustomObjects.PatchClusterCustomObjectStatusWithHttpMessagesAsync(patch, Resources.CiliumGroup, Resources.CiliumVersion, plural, r.Name,
                fieldManager: "palisade-agent", cancellationToken: cancel).ConfigureAwait(false)
            : await _client.CustomObjects.PatchNamespacedCustomObjectStatusWithHttpMessagesAsync(patch, Resources.CiliumGroup, Resources.CiliumVersion, r.Namespace, plural, r.Name,
                fieldManager: "palisade-agent", cancellationToken: cancel).ConfigureAwait(false))
        {
        }
        Interlocked.Increment(ref _patched);

        var state = r.State + "|" + r.Message;
        lock (_gate)
        {
            if (_lastState.GetValueOrDefault(key) == state)
            {
                return; // no change on this node: no new Event
            }
            _lastState[key] = state;
        }
        var warning = r.State is "error" or "partially_enabled";
        var ev = new Corev1Event
        {
            Metadata = new V1ObjectMeta { GenerateName = $"{r.Name}.", NamespaceProperty = r.Namespace ?? "default" },
            InvolvedObject = new V1ObjectReference
            {
                ApiVersion = $"{Resources.CiliumGroup}/{Resources.CiliumVersion}", Kind = r.Kind, Name = r.Name, NamespaceProperty = r.Namespace, Uid = r.Uid,
            },
            Reason = r.State switch
            {
                "enabled" => "PolicyEnabled",
                "partially_enabled" => "PolicyPartiallyEnabled",
                "disabled" => "PolicyDisabled",
                _ => "PolicyError",
            },
            Message = $"node {_node}: {r.State} ({r.Mode})" + (r.Message.Length > 0 ? $": {r.Message}" : ""),
            Type = warning ? "Warning" : "Normal",
            Source = new V1EventSource { Component = "palisade-agent", Host = _node },
            ReportingComponent = "palisade-agent",
            ReportingInstance = _node,
            FirstTimestamp = now.UtcDateTime,
            LastTimestamp = now.UtcDateTime,
            Count = 1,
        };
        using (await _client.CoreV1.CreateNamespacedEventWithHttpMessagesAsync(ev, ev.Metadata.NamespaceProperty, cancellationToken: cancel).ConfigureAwait(false))
        {
        }
        Interlocked.Increment(ref _events);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Kubernetes status of {Kind} {Name} not written, will retry: {Error}")]
    private static partial void LogFailed(ILogger logger, string kind, string name, string error);
}
