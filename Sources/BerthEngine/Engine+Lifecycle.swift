import BerthImages
import BerthOCI
import BerthOS
import FoundationEssentials
import Glibc

extension Engine {
    // MARK: Create

    public func create(name requested: String?, request: DockerContainerCreateRequest) throws(EngineError) -> (id: String, warnings: [String]) {
        var name: String
        if let requested, !requested.isEmpty {
            let bare = requested.hasPrefix("/") ? String(requested.dropFirst()) : requested
            guard Self.validName(bare) else {
                throw EngineError(.invalidArgument, "Invalid container name (\(bare)), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            }
            name = "/" + bare
            if let other = containers.values.first(where: { $0.name == name }) {
                throw EngineError(.conflict, "Conflict. The container name \"\(name)\" is already in use by container \"\(other.id)\". You have to remove (or rename) that container to be able to reuse that name.")
            }
        } else {
            repeat { name = "/" + Self.randomName() } while containers.values.contains { $0.name == name }
        }
        guard let imageRef = request.config.image, !imageRef.isEmpty else {
            throw EngineError(.invalidArgument, "no image specified: config.Image is required")
        }
        let image: ImageStore.Image
        do { image = try images.image(imageRef) } catch { throw Self.mapError(error, imageRef: imageRef) }

        var id = Self.randomID()
        while containers[id] != nil { id = Self.randomID() }
        var hostConfig = request.hostConfig ?? DockerHostConfig()
        if hostConfig.logConfig?.type == nil || hostConfig.logConfig?.type == "" {
            hostConfig.logConfig = .init(type: "json-file", config: [:])
        }
        if hostConfig.networkMode == nil || hostConfig.networkMode == "" { hostConfig.networkMode = "default" }
        let dir = dir(id)
        do throws(EngineError) {
            try Self.system { () throws(SystemError) in
                try FileSystem.makeDirectories(dir + "/bundle/rootfs", mode: 0o710)
            }
            let mount: OverlayMount
            do { mount = try images.prepareRootfs(container: id, image: image.id.string, target: rootfs(id)) } catch {
                throw Self.mapError(error)
            }
            let hostname = request.config.hostname.flatMap { $0.isEmpty ? nil : $0 } ?? String(id.prefix(12))
            let hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                + "fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            let resolv = (try? FileSystem.readString("/etc/resolv.conf")) ?? ""
            try Self.system { () throws(SystemError) in
                try FileSystem.writeAtomically(dir + "/hostname", Array((hostname + "\n").utf8))
                try FileSystem.writeAtomically(dir + "/hosts", Array(hosts.utf8))
                try FileSystem.writeAtomically(dir + "/resolv.conf", Array(resolv.utf8))
            }
            // Networking is not there yet: every container gets its own namespace with loopback.
            var specHostConfig = hostConfig
            specHostConfig.networkMode = "none"
            let passwd = Self.readFromLayers(mount.lower, "etc/passwd")
            let group = Self.readFromLayers(mount.lower, "etc/group")
            let lookups = SpecBuilder.Lookups(
                user: { Self.lookupUser($0, passwd: passwd, group: group) },
                group: { Self.lookupGroup($0, group: group) })
            let built = try SpecBuilder.buildWithWarnings(
                config: request.config, hostConfig: specHostConfig, image: image.config, containerID: id,
                rootfs: "rootfs", hostsFile: dir + "/hosts", resolvConf: dir + "/resolv.conf",
                hostnameFile: dir + "/hostname", lookups: lookups)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let specBytes: Data
            do { specBytes = try encoder.encode(built.spec) } catch {
                throw EngineError(.system, "encoding config.json: \(error)")
            }
            try Self.system { () throws(SystemError) in
                try FileSystem.writeAtomically(dir + "/bundle/config.json", specBytes, durable: true)
            }
            let args = built.spec.process?.args ?? []
            let rec = ContainerRecord(
                id: id, name: name, created: Timestamp.now(), image: imageRef, imageID: image.id.string,
                path: args.first ?? "", args: Array(args.dropFirst()), config: request.config, hostConfig: hostConfig)
            try persist(rec)
            containers[id] = rec
            return (id, built.warnings)
        } catch {
            try? images.snapshots.remove(container: id)
            try? FileSystem.removeTree(dir)
            throw error
        }
    }

    // MARK: Start

    public func start(_ ref: String) async throws(EngineError) {
        let id = try resolve(ref)
        guard var rec = containers[id] else { throw EngineError(.notFound, "No such container: \(ref)") }
        if rec.running { throw EngineError(.notModified, "container already started") }
        guard !removing.contains(id) else { throw EngineError(.conflict, "removal of container \(id) is already in progress") }
        guard starting.insert(id).inserted else { throw EngineError(.conflict, "container \(id) is already being started") }
        defer { starting.remove(id) }
        if rec.runtimeCreated {
            _ = await runtime(["delete", "--force", id])
            rec.runtimeCreated = false
        }
        let monitorDir = monitorDir(id)
        unlink(monitorDir + "/exit.json")
        do throws(EngineError) {
            if !rec.rootfsMounted {
                let snapshot: Snapshotter.ContainerSnapshot
                do { snapshot = try images.snapshots.snapshot(container: id) } catch { throw Self.mapError(error) }
                guard Glibc.mount("overlay", rootfs(id), "overlay", 0, snapshot.mount.options) == 0 else {
                    throw EngineError(.system, SystemError("mount overlay on \(rootfs(id))").message)
                }
                rec.rootfsMounted = true
                containers[id] = rec
            }
            var args = ["--runtime", runtimePath, "--runtime-root", root + "/runtime", "--id", id,
                        "--bundle", dir(id) + "/bundle", "--dir", monitorDir]
            if rec.config.tty == true { args.append("--tty") }
            if rec.config.openStdin == true { args.append("--stdin") }
            let launched = await HelperProcess.run(monitorPath, args)
            guard launched.succeeded else {
                throw EngineError(.system, Self.trimmed(launched.output))
            }
            rec = containers[id] ?? rec
            rec.runtimeCreated = true
            containers[id] = rec
            // Attach clients connect before the process runs, so they miss no output.
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] {
                if let conn = try? AttachConnection(path: monitorDir + "/attach.sock") { waiter.yield(conn) }
                waiter.finish()
            }
            let started = await runtime(["start", id])
            guard started.succeeded else {
                _ = await runtime(["delete", "--force", id])
                rec.runtimeCreated = false
                containers[id] = rec
                throw EngineError(.system, Self.trimmed(started.output))
            }
        } catch {
            rec = containers[id] ?? rec
            unmountRootfs(&rec)
            rec.error = error.message
            containers[id] = rec
            try? persist(rec)
            for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
            throw error
        }
        rec = containers[id] ?? rec
        rec.pid = (try? FileSystem.readString(monitorDir + "/pid")).flatMap { Int32(Self.trimmed($0)) } ?? 0
        try rec.transition(to: .running)
        rec.startedAt = Timestamp.now()
        rec.finishedAt = ContainerRecord.zeroTime
        rec.exitCode = 0
        rec.error = ""
        containers[id] = rec
        try persist(rec)
        watchExit(id)
    }

    /// Polls for the monitor's exit.json (written atomically) every 20 ms.
    func watchExit(_ id: String) {
        let path = monitorDir(id) + "/exit.json"
        Task {
            while !FileSystem.exists(path) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            await self.observeExit(id)
        }
    }

    struct ExitFile: Decodable {
        var exitCode: Int32
        var finishedAt: String?
    }

    func observeExit(_ id: String) async {
        guard var rec = containers[id], rec.running else { return }
        let exit = (try? FileSystem.readBytes(monitorDir(id) + "/exit.json"))
            .flatMap { try? JSONDecoder().decode(ExitFile.self, from: Data($0)) }
        try? rec.transition(to: .exited)
        rec.exitCode = exit?.exitCode ?? 255
        rec.finishedAt = exit?.finishedAt ?? Timestamp.now()
        rec.pid = 0
        let deleteRuntime = rec.runtimeCreated
        rec.runtimeCreated = false
        unmountRootfs(&rec)
        containers[id] = rec
        exitCounts[id, default: 0] += 1
        try? persist(rec)
        if deleteRuntime { _ = await runtime(["delete", "--force", id]) }
        if rec.hostConfig.autoRemove == true, containers[id] != nil {
            try? await remove(id, force: true)
        }
    }

    func unmountRootfs(_ rec: inout ContainerRecord) {
        guard rec.rootfsMounted else { return }
        let target = rootfs(rec.id)
        if umount2(target, 0) != 0 && errno != EINVAL { umount2(target, Int32(MNT_DETACH)) }
        rec.rootfsMounted = false
    }

    // MARK: Wait

    public enum WaitCondition: String, Sendable {
        case notRunning = "not-running", nextExit = "next-exit", removed
    }

    /// Waits for the condition; returns the exit code.
    public func wait(_ ref: String, condition: WaitCondition) async throws(EngineError) -> Int32 {
        let id = try resolve(ref)
        let seen = exitCounts[id, default: 0]
        while true {
            guard let rec = containers[id] else { return removedExitCodes[id] ?? 0 }
            switch condition {
            case .notRunning where !rec.running: return rec.exitCode
            case .nextExit where exitCounts[id, default: 0] > seen: return rec.exitCode
            default: break
            }
            do { try await Task.sleep(for: .milliseconds(20)) } catch {
                throw EngineError(.invalidState, "wait cancelled")
            }
        }
    }

    // MARK: Signals

    public func kill(_ ref: String, signal: String?) async throws(EngineError) {
        let id = try resolve(ref)
        guard containers[id]!.running else {
            throw EngineError(.conflict, "Container \(id) is not running")
        }
        let result = await runtime(["kill", id, signal.flatMap { $0.isEmpty ? nil : $0 } ?? "SIGKILL"])
        guard result.succeeded else { throw EngineError(.system, Self.trimmed(result.output)) }
    }

    /// The stop signal, then SIGKILL after `timeout` seconds (default the container's, else 10).
    public func stop(_ ref: String, timeout: Int?) async throws(EngineError) {
        let id = try resolve(ref)
        let rec = containers[id]!
        guard rec.running else { throw EngineError(.notModified, "container already stopped") }
        let seconds = timeout ?? rec.config.stopTimeout ?? 10
        _ = await runtime(["kill", id, rec.config.stopSignal ?? "SIGTERM"])
        if seconds >= 0, await waitStopped(id, seconds: Double(seconds)) { return }
        _ = await runtime(["kill", id, "SIGKILL"])
        _ = await waitStopped(id, seconds: 30)
    }

    func waitStopped(_ id: String, seconds: Double) async -> Bool {
        let deadline = monotonicSeconds() + seconds
        while containers[id]?.running == true {
            if monotonicSeconds() >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    // MARK: Remove

    public func remove(_ ref: String, force: Bool) async throws(EngineError) {
        let id = try resolve(ref)
        guard !removing.contains(id) else { return }
        guard !starting.contains(id) else {
            throw EngineError(.conflict, "cannot remove container \(id): it is being started; try again")
        }
        if containers[id]!.running {
            guard force else {
                throw EngineError(.conflict, "cannot remove container \"\(containers[id]!.name)\": container is running: stop the container before removing or force remove")
            }
            removing.insert(id)
            _ = await runtime(["kill", id, "SIGKILL"])
            if !(await waitStopped(id, seconds: 10)) {
                removing.remove(id)
                throw EngineError(.system, "container \(id) did not exit after SIGKILL")
            }
        }
        removing.insert(id)
        defer { removing.remove(id) }
        guard var rec = containers[id] else { return }
        if rec.runtimeCreated {
            rec.runtimeCreated = false
            containers[id] = rec
            _ = await runtime(["delete", "--force", id])
        }
        rec = containers[id] ?? rec
        unmountRootfs(&rec)
        for waiter in pendingAttaches.removeValue(forKey: id) ?? [] { waiter.finish() }
        try? images.snapshots.remove(container: id)
        do { try FileSystem.removeTree(dir(id)) } catch {
            throw EngineError(.system, error.message)
        }
        removedExitCodes[id] = rec.exitCode
        containers[id] = nil
    }
}
