// The compiled parts of Boost.Asio and Boost.Beast, built once here instead of in every
// file that includes them (BOOST_ASIO_SEPARATE_COMPILATION / BOOST_BEAST_SEPARATE_COMPILATION
// are set for kaizen_daemon and everything linking it). Halves compile time of the
// Asio-using files on this 2-core machine.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
