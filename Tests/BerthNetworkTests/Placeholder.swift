import XCTest
@testable import BerthNetwork

final class BerthNetworkPlaceholderTests: XCTestCase {}
