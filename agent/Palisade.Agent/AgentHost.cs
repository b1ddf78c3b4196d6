using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Palisade.Agent.Configuration;
using Palisade.Bpf.Probe;
using Palisade.Events;
using Prometheus;
using Serilog;
using Serilog.Events;
using Serilog.Formatting.Compact;

namespace Palisade.Agent;

/// <summary>Builds and runs the agent: the composition root.</summary>
public static class AgentHost
{
    /// <summary>Runs until SIGTERM/SIGINT, then stops every service (detaching what they attached) and returns 0.</summary>
    public static async Task<int> RunAsync(AgentOptions options, CancellationToken cancellationToken = default)
    {
        // Shipping logs to Elasticsearch starts before the logger, so start-up lines ship too,
        // and stops after it, so the last lines do.
        await using var shippedLogs = options is { Elasticsearch: { } es, ElasticsearchLogsIndex: { } logsIndex }
            ? new ElasticsearchLogs(es, logsIndex, options.NodeName) : null;
        using var logger = CreateLogger(options, shippedLogs);
        Log.Logger = logger;
        try
        {
            await using var app = Build(options, logger, shippedLogs);
            logger.Information("Palisade agent {Version} starting (pid {Pid}); settings: {Settings}",
                typeof(AgentHost).Assembly.GetName().Version?.ToString(3), Environment.ProcessId,
                string.Join(", ", options.Sources.Select(kv => $"{kv.Key} from {kv.Value}")));
            foreach (var warning in options.Warnings)
            {
                logger.Warning("Configuration: {Warning}", warning);
            }
            await app.RunAsync(cancellationToken).ConfigureAwait(false);
            logger.Information("Palisade agent stopped");
            return 0;
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            logger.Fatal(e, "Palisade agent failed");
            return 1;
        }
        finally
        {
            Log.Logger = Serilog.Core.Logger.None;
        }
    }

    internal static WebApplication Build(AgentOptions options, Serilog.ILogger logger, ElasticsearchLogs? shippedLogs = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "palisade" });
        builder.Services.AddSerilog(logger, dispose: false);
        builder.Services.AddRoutingCore();
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(15));
        builder.WebHost.UseKestrelCore().ConfigureKestrel(k =>
        {
            if (options.MetricsServerEndpoint is { } metrics)
            {
                k.Listen(metrics);
            }
            if (options.HealthServerEndpoint is { } endpoint)
            {
                k.Listen(endpoint);
            }
            Api.ApiServer.Listen(k, options);
        });
        if (options.ServerAddress is not null)
        {
            builder.Services.AddGrpc(o => o.EnableDetailedErrors = true);
        }
        builder.Services.AddSingleton(options);
        if (shippedLogs is not null)
        {
            builder.Services.AddSingleton(shippedLogs);
        }
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<AgentReadiness>();
        builder.Services.AddSingleton<EventHub>();
        // Start order is registration order; stop order is the reverse: sensors stop (and
        // detach) before exporters drain what they produced. The services that own the probe
        // report, the process sensor, the policy engine and the Kubernetes status are also
        // singletons, so that the metrics, the status and the API can ask them.
        builder.Services.AddSingleton<KernelSetupService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KernelSetupService>());
        builder.Services.AddSingleton<ExportService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ExportService>());
        // Like a sink: subscribed before the sensors start, so GetFlows' history misses nothing.
        builder.Services.AddSingleton<Api.FlowHistoryService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<Api.FlowHistoryService>());
        builder.Services.AddSingleton<AgentMetrics>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AgentMetrics>());
        builder.Services.AddSingleton<ProcessSensorService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ProcessSensorService>());
        builder.Services.AddSingleton<FlowSensorService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<FlowSensorService>());
        builder.Services.AddSingleton<PolicyService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<PolicyService>());
        builder.Services.AddSingleton<KernelDatapath>();
        builder.Services.AddSingleton(sp => sp.GetRequiredService<KernelDatapath>().Parts());
        builder.Services.AddSingleton<Palisade.Datapath.IEndpointDirectory>(sp => new LiveEndpoints(sp.GetRequiredService<DatapathService>()));
        builder.Services.AddSingleton<DatapathService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<DatapathService>());
        builder.Services.AddSingleton<ConntrackCollector>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ConntrackCollector>());
        // After pod networking: it follows its endpoints and writes their policies to its datapath.
        builder.Services.AddSingleton<NetworkPolicy.NetworkPolicyService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<NetworkPolicy.NetworkPolicyService>());
        builder.Services.AddSingleton<ServiceLbService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ServiceLbService>());
        builder.Services.AddSingleton(new Palisade.Kubernetes.PodCache { IncludeAnnotations = options.EnablePodAnnotations });
        builder.Services.AddSingleton<KubernetesService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<KubernetesService>());
        builder.Services.AddHostedService<ReadinessService>();

        var app = builder.Build();
        if (options.MetricsServerEndpoint is { } metricsServer)
        {
            // The metrics port (often every address of a hostNetwork pod, for Prometheus and the
            // kubelet's probes) answers /metrics, /healthz and /readyz and nothing else: status,
            // policies and the kernel probe stay on the (loopback) health server.
            app.Use((ctx, next) =>
            {
                if (ctx.Connection.LocalPort == metricsServer.Port && options.HealthServerEndpoint?.Port != metricsServer.Port)
                {
                    if (ctx.Request.Path != "/metrics" && ctx.Request.Path != "/healthz" && ctx.Request.Path != "/readyz")
                    {
                        ctx.Response.StatusCode = StatusCodes.Status404NotFound;
                        return Task.CompletedTask;
                    }
                }
                return next(ctx);
            });
        }
        // Status, policies and the kernel probe describe the node in detail and have no
        // authentication: only local clients get them, whatever the health server binds to
        // (Tetragon's chart sets health-server-address to ":6789", every address of a
        // hostNetwork pod). The kubelet's /healthz and /readyz and /metrics stay open.
        app.Use((ctx, next) =>
        {
            if (!DetailsAllowed(ctx))
            {
                ctx.Response.StatusCode = StatusCodes.Status403Forbidden;
                ctx.Response.ContentType = "text/plain";
                return ctx.Response.WriteAsync(DetailsRefused);
            }
            return next(ctx);
        });
        if (options.HealthServerEndpoint is not null || options.ServerAddress is not null || options.MetricsServerEndpoint is not null)
        {
            app.UseRouting();
        }
        if (options.MetricsServerEndpoint is not null && options.HealthServerEndpoint is null)
        {
            app.MapMetrics("/metrics", app.Services.GetRequiredService<AgentMetrics>().Registry);
            MapProbes(app);
        }
        if (options.HealthServerEndpoint is not null)
        {
            MapHealth(app);
        }
        if (options.ServerAddress is not null)
        {
            app.MapGrpcService<Api.SensorsService>();
            app.MapGrpcService<Api.Tetragon.TetragonSensorsService>(); // Tetragon's API, same address, for tetra and its clients
            Api.ApiServer.SecureSocket(app, options);
        }
        return app;
    }

    /// <summary>/healthz (liveness) and /readyz (readiness).</summary>
    private static void MapProbes(WebApplication app)
    {
        var readiness = app.Services.GetRequiredService<AgentReadiness>();
        app.MapGet("/healthz", (HttpContext ctx) => ctx.Response.WriteAsync("ok\n"));
        app.MapGet("/readyz", (HttpContext ctx) =>
        {
            ctx.Response.StatusCode = readiness.Ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
            return ctx.Response.WriteAsync(readiness.Ready ? "ready\n" : "starting\n");
        });
    }

    private static void MapHealth(WebApplication app)
    {
        var readiness = app.Services.GetRequiredService<AgentReadiness>();
        var kernel = app.Services.GetRequiredService<KernelSetupService>();
        var processes = app.Services.GetRequiredService<ProcessSensorService>();
        var policies = app.Services.GetRequiredService<PolicyService>();
        var kubernetes = app.Services.GetRequiredService<KubernetesService>();
        app.MapMetrics("/metrics", app.Services.GetRequiredService<AgentMetrics>().Registry);
        MapProbes(app);
        app.MapGet("/v1/status", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "application/json";
            var exports = app.Services.GetRequiredService<ExportService>();
            await ctx.Response.WriteAsync(AgentStatus.Json(readiness, processes.Sensor, kubernetes.Status, app.Services.GetRequiredService<EventHub>(), exports, app.Services.GetRequiredService<PolicyService>().InvalidPolicyFiles, app.Services.GetService<ElasticsearchLogs>(), app.Services.GetRequiredService<DatapathService>(), AgentStatus.ReadFlows(app.Services), app.Services.GetService<NetworkPolicy.NetworkPolicyService>(), app.Services.GetService<ConntrackCollector>(), app.Services.GetService<ServiceLbService>())).ConfigureAwait(false);
        });
        app.MapGet("/v1/policies", async (HttpContext ctx) =>
        {
            ctx.Response.ContentType = "application/json";
            var list = policies.Engine?.List() ?? [];
            await ctx.Response.WriteAsync(System.Text.Json.JsonSerializer.Serialize(list, PolicyJson.Options)).ConfigureAwait(false);
        });
        app.MapGet("/v1/network-policies", async (HttpContext ctx) =>
        {
            var service = app.Services.GetRequiredService<NetworkPolicy.NetworkPolicyService>();
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(NetworkPolicy.NetworkPolicyJson.Status(service.Engine, service.PolicyDir)).ConfigureAwait(false);
        });
        app.MapGet("/v1/probe", async (HttpContext ctx) =>
        {
            if (kernel.Probe is not { } report)
            {
                ctx.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                return;
            }
            ctx.Response.ContentType = "application/json";
            await JsonSerializer.SerializeAsync(ctx.Response.Body, report, ProbeReportJsonContext.Default.ProbeReport).ConfigureAwait(false);
        });
    }

    internal static Serilog.Core.Logger CreateLogger(AgentOptions options, ElasticsearchLogs? shippedLogs = null)
    {
        var level = options.LogLevel switch
        {
            "trace" => LogEventLevel.Verbose,
            "debug" => LogEventLevel.Debug,
            "warn" => LogEventLevel.Warning,
            "error" => LogEventLevel.Error,
            _ => LogEventLevel.Information,
        };
        var config = new LoggerConfiguration()
            .MinimumLevel.Is(level)
            // ASP.NET's own chatter is only interesting when debugging the agent.
            .MinimumLevel.Override("Microsoft", level > LogEventLevel.Warning ? level : LogEventLevel.Warning)
            .Enrich.FromLogContext();
        // Logs go to stderr: stdout is reserved for events.
        config = options.LogFormat == "json"
            ? config.WriteTo.Console(new CompactJsonFormatter(), standardErrorFromLevel: LogEventLevel.Verbose)
            : config.WriteTo.Console(outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u4} {SourceContext:l}: {Message:lj}{NewLine}{Exception}",
                standardErrorFromLevel: LogEventLevel.Verbose, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        if (options.LogFile is { } file)
        {
            config = options.LogFormat == "json"
                ? config.WriteTo.File(new CompactJsonFormatter(), file, fileSizeLimitBytes: 10 * 1024 * 1024, rollOnFileSizeLimit: true, retainedFileCountLimit: 6)
                : config.WriteTo.File(file, outputTemplate: "{Timestamp:yyyy-MM-dd HH:mm:ss.fff} {Level:u4} {SourceContext:l}: {Message:lj}{NewLine}{Exception}",
                    fileSizeLimitBytes: 10 * 1024 * 1024, rollOnFileSizeLimit: true, retainedFileCountLimit: 6, formatProvider: System.Globalization.CultureInfo.InvariantCulture);
        }
        if (shippedLogs is not null)
        {
            config = config.WriteTo.Sink(shippedLogs);
        }
        return config.CreateLogger();
    }
    internal const string DetailsRefused = "/v1/ endpoints answer local clients only (127.0.0.1, ::1): run `palisade status` or curl on the node itself, e.g. kubectl exec ds/palisade -- palisade status.\n";

    /// <summary>
    /// Whether a request may have what it asks for: any path but /v1/, and /v1/ only from a
    /// loopback address (an IPv4-mapped one too) or a unix socket (no address: root only).
    /// </summary>
    internal static bool DetailsAllowed(HttpContext ctx)
    {
        if (!ctx.Request.Path.StartsWithSegments("/v1", StringComparison.Ordinal))
        {
            return true;
        }
        if (ctx.Connection.RemoteIpAddress is not { } remote)
        {
            return true;
        }
        return System.Net.IPAddress.IsLoopback(remote.IsIPv4MappedToIPv6 ? remote.MapToIPv4() : remote);
    }
}
