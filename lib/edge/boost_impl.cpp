// The compiled (non-template) parts of Boost.Asio, its TLS layer and
// Boost.Beast, built once here (BOOST_ASIO_SEPARATE_COMPILATION and
// BOOST_BEAST_SEPARATE_COMPILATION), so edge_server.cpp only instantiates
// templates and the two compile in parallel.
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>
#include <boost/beast/src.hpp>
