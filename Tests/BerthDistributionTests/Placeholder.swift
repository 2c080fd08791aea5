import XCTest
@testable import BerthDistribution
