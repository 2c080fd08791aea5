import AsyncHTTPClient
import BerthImages
import FoundationEssentials
import NIOCore

/// One row of a registry search (the v1 search API that Docker Hub and berth-registry serve).
public struct SearchResult: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var starCount: Int
    public var isOfficial: Bool
    public var isAutomated: Bool

    enum CodingKeys: String, CodingKey {
        case name, description, starCount = "star_count", isOfficial = "is_official", isAutomated = "is_automated"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description) ?? ""
        starCount = try c.decodeIfPresent(Int.self, forKey: .starCount) ?? 0
        isOfficial = try c.decodeIfPresent(Bool.self, forKey: .isOfficial) ?? false
        isAutomated = try c.decodeIfPresent(Bool.self, forKey: .isAutomated) ?? false
    }

    public init(name: String, description: String = "", starCount: Int = 0, isOfficial: Bool = false, isAutomated: Bool = false) {
        self.name = name; self.description = description; self.starCount = starCount
        self.isOfficial = isOfficial; self.isAutomated = isAutomated
    }
}

extension RegistryClient {
    /// `docker search TERM`: a term that starts with a registry host (`localhost:5000/busy`)
    /// searches that registry, anything else Docker Hub's index, as dockerd splits it.
    public func search(_ term: String, limit: Int, credentials: RegistryCredentials?) async throws(RegistryError) -> [SearchResult] {
        let (domain, query) = Self.splitSearchTerm(term)
        guard !query.isEmpty else { throw RegistryError(.invalid, "invalid search term: the query is empty") }
        var lastError = RegistryError(.unavailable, "no endpoint for \(domain)")
        for var endpoint in configuration.endpoints(for: domain) where !endpoint.isMirror {
            // Docker Hub searches on its index host, not on the registry host.
            if domain == Reference.defaultDomain { endpoint.host = "index.docker.io" }
            let session = RegistrySession(client: self, endpoint: endpoint, reference: Reference(domain: domain, path: ""),
                                          scopes: [], credentials: credentials, operation: .login)
            let url = endpoint.base + "/v1/search?q=\(RegistrySession.percentEncode(query))&n=\(limit)"
            do throws(RegistryError) {
                let response = try await session.send(.GET, url)
                guard response.status == .ok else { throw await session.failure(response) }
                let body: ByteBuffer
                do { body = try await response.body.collect(upTo: 16 << 20) } catch {
                    throw RegistryError(.unavailable, "reading the search results of \(endpoint.base): \(error)")
                }
                struct Page: Decodable { var results: [SearchResult] }
                do { return try JSONDecoder().decode(Page.self, from: Data(body.readableBytesView)).results } catch {
                    throw RegistryError(.unavailable, "invalid search results from \(endpoint.base): \(error)")
                }
            } catch let e where e.code == .unavailable && e.message.hasPrefix("transport:") {
                lastError = RegistryError(.unavailable, String(e.message.dropFirst("transport: ".count)))
            }
        }
        throw lastError
    }

    /// (registry domain, query): the first component names a registry when it looks like a host.
    static func splitSearchTerm(_ term: String) -> (String, String) {
        guard let slash = term.firstIndex(of: "/") else { return (Reference.defaultDomain, term) }
        let first = term[..<slash]
        guard first.contains(".") || first.contains(":") || first == "localhost" else { return (Reference.defaultDomain, term) }
        return (String(first), String(term[term.index(after: slash)...]))
    }
}
