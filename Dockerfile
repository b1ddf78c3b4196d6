# The agent's container image (used by helm/palisade). Build from the repository root:
#   docker build -t ghcr.io/palisade-io/palisade:0.1.0 .
# The BPF objects are compiled here (CO-RE): vmlinux.h comes from the build host's
# /sys/kernel/btf/vmlinux, and the objects relocate on each node's kernel at load time.

FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN dotnet publish agent/Palisade.Cli -c Release -o /out -nologo
# The CNI plugin, NativeAOT (a runtime starts it per pod); the chart's init container installs it.
RUN dotnet publish agent/Palisade.Cni -c Release -r linux-x64 -p:PublishAot=true -o /out-cni -nologo \
 && cp /out-cni/palisade-cni /out/palisade-cni

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# libbpf1 is loaded by the agent through P/Invoke; iproute2 for the datapath.
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libbpf1 libelf1 iproute2 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out /opt/palisade
# On PATH: kubectl exec ds/palisade -- palisade getevents
RUN ln -s /opt/palisade/palisade /usr/local/bin/palisade
# A fixed gen0 budget: .NET derives it from the L3 cache size otherwise (see docs/performance.md).
ENV DOTNET_GCgen0size=0x1000000
ENTRYPOINT ["/opt/palisade/palisade"]
CMD ["agent"]
